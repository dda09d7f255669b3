"""Residual blocks found from the graph: submodules whose output is their input plus something (`x + f(x)`).

Such a block can be removed by replacing it with `compressor.models.zoo.Skip` (its output becomes its input: the
skip path stays, the branch goes), which keeps every shape and every other weight. Each submodule is traced alone
with torch.fx; it is residual when its output is reached from its first input through additions only (`x + f(x)`,
`x += f(x)`, `(x + f(x)) + g(...)`, a skip path through `nn.Identity`, an activation after the sum as in RegNet's
`relu(x + f(x))`, which removal drops with the branch, as ResNet's removal does). This covers MobileNet and
EfficientNet inverted residuals, RegNet, ConvNeXt and transformer blocks, whatever their class names; a block whose
skip path projects (a strided first block) is not `x + f(x)`, and a submodule torch.fx cannot trace
(data-dependent control flow) is left out. Only the outermost residual blocks are listed: removing one removes
whatever is inside it.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

ADDITIONS = {operator.add, operator.iadd, torch.add}
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish)
ACTIVATION_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.nn.functional.gelu, torch.nn.functional.silu}


def is_residual(module: nn.Module) -> bool:
    """Whether `module`'s output is its first input plus something, through additions only (traced with fx)."""
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) or not list(module.children()):
        return False
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:  # noqa: BLE001 - whatever fx cannot trace is not a candidate
        return False
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    outputs = [node for node in graph.nodes if node.op == "output"]
    if not placeholders or len(outputs) != 1 or not isinstance(outputs[0].args[0], fx.Node):
        return False
    return _skips_to(outputs[0].args[0], placeholders[0], dict(module.named_modules()))


def _skips_to(node: fx.Node, source: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether `node` is `source`, or an addition one of whose operands is (through additions, identities and an
    activation after the sum, as ResNet and RegNet blocks end)."""
    if node is source:
        return True
    passes = (node.op == "call_module" and isinstance(modules.get(str(node.target)), (nn.Identity, *ACTIVATIONS))) \
        or (node.op == "call_function" and node.target in ACTIVATION_FUNCTIONS)
    if passes:
        return isinstance(node.args[0], fx.Node) and _skips_to(node.args[0], source, modules)
    adds = (node.op == "call_function" and node.target in ADDITIONS) or (
        node.op == "call_method" and node.target in ("add", "add_", "__add__", "__iadd__"))
    return adds and any(isinstance(arg, fx.Node) and _skips_to(arg, source, modules) for arg in node.args[:2])


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the outermost residual submodules of `model`, in module order (the root itself excluded)."""
    found: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(f"{outer}.") for outer in found):
            continue
        if is_residual(module):
            found.append(name)
    return found


def is_outermost_residual(model: nn.Module, name: str) -> bool:
    """Whether `name` is one of `residual_blocks(model)`, tracing only it and its ancestors: a submodule is listed
    there exactly when it is residual and none of its ancestors (the root aside) is."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        return False
    parts = name.split(".")
    ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
    return bool(name) and is_residual(module) and not any(is_residual(model.get_submodule(a)) for a in ancestors)
