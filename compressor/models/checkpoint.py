"""Checkpoints that load with `torch.load(weights_only=True)` and rebuild structurally edited models.

A checkpoint stores the base architecture, the dataset facts a model needs (classes, channels, input size,
normalization), the state_dict, and the structural edits that turn a freshly built base model into the saved one.
Edits are found by diffing the saved model against the base, so strategies that remove blocks, delete dense
layers or shrink channels need not record anything: each edit is `replace`, `delete` or `add` of a module at a
dotted path, with the new module described by its type (from a fixed list of torch.nn layers) and arguments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compressor._util.fileio import load_torch_file, save_torch_atomic
from compressor.data import Dataset, load_dataset
from compressor.data.loaders import RepeatChannels
from compressor.errors import CompressorError
from compressor.models.zoo import Skip, build_model, get_arch, model_channels, set_submodule

FORMAT = "compressor.checkpoint"
VERSION = 1


def _pair(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


_LAYERS: dict[str, tuple[type[nn.Module], Any]] = {
    "Conv2d": (nn.Conv2d, lambda m: {
        "in_channels": m.in_channels, "out_channels": m.out_channels, "kernel_size": _pair(m.kernel_size),
        "stride": _pair(m.stride), "padding": _pair(m.padding), "dilation": _pair(m.dilation),
        "groups": m.groups, "bias": m.bias is not None, "padding_mode": m.padding_mode}),
    "Linear": (nn.Linear, lambda m: {"in_features": m.in_features, "out_features": m.out_features,
                                     "bias": m.bias is not None}),
    "BatchNorm2d": (nn.BatchNorm2d, lambda m: {"num_features": m.num_features, "eps": m.eps,
                                               "momentum": m.momentum, "affine": m.affine,
                                               "track_running_stats": m.track_running_stats}),
    "Identity": (nn.Identity, lambda m: {}),
    "Skip": (Skip, lambda m: {}),
    "ReLU": (nn.ReLU, lambda m: {"inplace": m.inplace}),
    "Flatten": (nn.Flatten, lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    "Dropout": (nn.Dropout, lambda m: {"p": m.p, "inplace": m.inplace}),
    "MaxPool2d": (nn.MaxPool2d, lambda m: {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
                                           "padding": _pair(m.padding), "dilation": _pair(m.dilation),
                                           "ceil_mode": m.ceil_mode}),
    "AvgPool2d": (nn.AvgPool2d, lambda m: {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
                                           "padding": _pair(m.padding), "ceil_mode": m.ceil_mode,
                                           "count_include_pad": m.count_include_pad}),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, lambda m: {"output_size": _pair(m.output_size)}),
}
_CONTAINERS: dict[str, type[nn.Module]] = {"Sequential": nn.Sequential}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model and feed it data: architecture, classes, input format."""

    arch: str
    num_classes: int
    in_channels: int
    input_size: int
    dataset: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class Checkpoint:
    """A model, its spec and the history of what was done to it (training, strategies)."""

    spec: ModelSpec
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)


def module_spec(module: nn.Module, path: str) -> dict[str, Any]:
    """Describe `module` as {type, args} (or a Sequential of such) so it can be rebuilt without pickle."""
    kind = type(module).__name__
    if kind in _LAYERS and _LAYERS[kind][0] is type(module):
        return {"type": kind, "args": _LAYERS[kind][1](module)}
    if kind in _CONTAINERS and _CONTAINERS[kind] is type(module):
        return {"type": kind, "children": [[name, module_spec(child, f"{path}.{name}")]
                                           for name, child in module.named_children()]}
    accepted = ", ".join(sorted([*_LAYERS, *_CONTAINERS]))
    raise CompressorError(f"cannot save the structural change at {path or '<root>'}: module type {kind} is not "
                          f"one of the rebuildable types ({accepted})")


def build_module(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a module from `module_spec` output."""
    kind = spec.get("type")
    if kind in _LAYERS:
        return _LAYERS[kind][0](**spec.get("args", {}))
    if kind in _CONTAINERS:
        container = _CONTAINERS[kind]()
        for name, child in spec.get("children", []):
            container.add_module(name, build_module(child))
        return container
    raise CompressorError(f"checkpoint names an unknown module type {kind!r}")


def _config(module: nn.Module) -> dict[str, Any] | None:
    kind = type(module).__name__
    if kind in _LAYERS and _LAYERS[kind][0] is type(module):
        return _LAYERS[kind][1](module)
    return None


def _own_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters and buffers a module holds itself (not its children's)."""
    tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return {name: tuple(t.shape) for name, t in tensors if t is not None}


def _size_attributes(module: nn.Module) -> dict[str, Any]:
    """The plain size settings of a module (ints, and tuples of ints), which a structural edit may change."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(module).items()
            if not k.startswith("_") and not isinstance(v, bool) and
            (isinstance(v, int) or (isinstance(v, tuple) and all(isinstance(i, int) for i in v)))}


def _resize_edit(base: nn.Module, model: nn.Module, path: str) -> dict[str, Any]:
    """A module of a type outside the rebuildable list, resized in place (what torch-pruning does): the new
    shapes of its own tensors and the size settings that changed."""
    base_sizes, sizes = _size_attributes(base), _size_attributes(model)
    return {"op": "resize", "path": path, "shapes": {k: list(v) for k, v in _own_shapes(model).items()},
            "attrs": {k: v for k, v in sizes.items() if base_sizes.get(k) != v}}


def structure_edits(base: nn.Module, model: nn.Module, path: str = "") -> list[dict[str, Any]]:
    """The replace/delete/add/resize edits that turn the module tree of `base` into that of `model`."""
    if type(base) is not type(model) or _config(base) != _config(model):
        return [{"op": "replace", "path": path, "module": module_spec(model, path)}]
    edits: list[dict[str, Any]] = []
    resized = _own_shapes(base) != _own_shapes(model) or _size_attributes(base) != _size_attributes(model)
    if _config(model) is None and resized:  # (an attention block narrowed: only its head_dim changes)
        if set(_own_shapes(base)) != set(_own_shapes(model)):
            module_spec(model, path)  # tensors were added or removed: only a rebuildable type can say how
        edits.append(_resize_edit(base, model, path))
    base_children, children = dict(base.named_children()), dict(model.named_children())
    for name, base_child in base_children.items():
        child_path = f"{path}.{name}" if path else name
        if name not in children:
            edits.append({"op": "delete", "path": child_path})
        else:
            edits.extend(structure_edits(base_child, children[name], child_path))
    for name, child in children.items():
        if name not in base_children:
            child_path = f"{path}.{name}" if path else name
            edits.append({"op": "add", "path": child_path, "module": module_spec(child, child_path)})
    return edits


def apply_edits(model: nn.Module, edits: list[dict[str, Any]]) -> nn.Module:
    """Apply `structure_edits` output to a freshly built base model."""
    for edit in edits:
        op, path = edit.get("op"), edit.get("path", "")
        if op in ("replace", "add"):
            if not path:
                raise CompressorError("checkpoint edit replaces the whole model, which cannot be rebuilt")
            set_submodule(model, path, build_module(edit["module"]))
        elif op == "delete":
            parent_path, _, name = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            delattr(parent, name)
        elif op == "resize":
            _resize(model.get_submodule(path), edit["shapes"], edit["attrs"])
        else:
            raise CompressorError(f"checkpoint has an unknown edit {op!r} at {path!r}")
    return model


def _resize(module: nn.Module, shapes: dict[str, list[int]], attrs: dict[str, Any]) -> None:
    """Give `module` tensors of the recorded shapes (values come from the state_dict) and its new size settings."""
    for name, value in attrs.items():
        if name not in _size_attributes(module):
            raise CompressorError(f"checkpoint resizes {type(module).__name__}.{name}, which is not a size setting")
        setattr(module, name, tuple(value) if isinstance(value, list) else int(value))
    for name, shape in shapes.items():
        if name in module._parameters and module._parameters[name] is not None:
            old = module._parameters[name]
            module._parameters[name] = nn.Parameter(old.new_empty(shape), requires_grad=old.requires_grad)
        elif name in module._buffers and module._buffers[name] is not None:
            module._buffers[name] = module._buffers[name].new_empty(shape)
        else:
            raise CompressorError(f"checkpoint resizes {type(module).__name__}.{name}, which the module lacks")


def _base_model(spec: ModelSpec) -> nn.Module:
    return build_model(spec.arch, spec.num_classes, spec.in_channels)


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write `checkpoint` atomically; the file holds only tensors and plain data."""
    state = checkpoint.model.state_dict()
    leftovers = [k for k in state if k.endswith(("_orig", "_mask"))]
    if leftovers:
        raise CompressorError(f"model still carries pruning masks ({leftovers[0]}, ...); make pruning permanent "
                              "before saving")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(checkpoint.spec).items()},
        "edits": structure_edits(_base_model(checkpoint.spec), checkpoint.model),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
        "history": checkpoint.history,
    }
    return save_torch_atomic(payload, path)


def _read(path: Path, payload: Any = None) -> dict[str, Any]:
    payload = load_torch_file(path, "checkpoint") if payload is None else payload
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CompressorError(f"{path} is not a compressor checkpoint (expected format {FORMAT!r}); "
                              "create one with `compressor train` or `compressor run`")
    if payload.get("version") != VERSION:
        raise CompressorError(f"{path} has checkpoint version {payload.get('version')!r}; this compressor "
                              f"reads version {VERSION}")
    return payload


def load_checkpoint(path: str | Path, payload: Any = None) -> Checkpoint:
    """Load and rebuild a checkpoint written by `save_checkpoint`, never executing code from the file."""
    path = Path(path)
    payload = _read(path, payload)
    try:
        raw = payload["spec"]
        spec = ModelSpec(arch=str(raw["arch"]), num_classes=int(raw["num_classes"]),
                         in_channels=int(raw["in_channels"]), input_size=int(raw["input_size"]),
                         dataset=str(raw["dataset"]), classes=tuple(raw["classes"]), mean=tuple(raw["mean"]),
                         std=tuple(raw["std"]))
        edits, state = payload["edits"], payload["state_dict"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CompressorError(f"checkpoint {path} is missing or has a malformed field: {exc}") from exc
    get_arch(spec.arch)
    try:
        model = apply_edits(_base_model(spec), edits)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CompressorError(f"checkpoint {path}: its structural edits do not apply to {spec.arch} "
                              f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
                              ) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CompressorError(f"checkpoint {path}: weights do not fit its {spec.arch} structure ({first})") from exc
    model.eval()
    return Checkpoint(spec=spec, model=model, history=list(payload.get("history", [])))


STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")


def _tensor_dict(value: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in value.items()):
        return dict(value)
    return None


def read_model_file(path: str | Path) -> Checkpoint | dict[str, torch.Tensor]:
    """A compressor checkpoint, or a plain state_dict (.pt/.pth torch file or .safetensors), read weights-only."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise CompressorError(f"state_dict {path} does not exist")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CompressorError(f"cannot read safetensors file {path}: {exc}") from exc
    payload = load_torch_file(path, "checkpoint")
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return load_checkpoint(path, payload)
    state = _tensor_dict(payload)
    for key in STATE_DICT_WRAPPERS:
        if state is None and isinstance(payload, dict):
            state = _tensor_dict(payload.get(key))
    if state is None:
        raise CompressorError(f"{path} is neither a compressor checkpoint nor a state_dict (a mapping of names to "
                              f"tensors, possibly under one of {', '.join(STATE_DICT_WRAPPERS)})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _first(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_state_dict_into(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, arch: str) -> None:
    """Load a plain state_dict strictly; a mismatch is one line naming the first offending keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} ({'x'.join(map(str, state[k].shape))} in the file, "
              f"{'x'.join(map(str, expected[k].shape))} in {arch})"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = [f"{label}: {_first(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes)) if keys]
    if problems:
        raise CompressorError(f"state_dict {path} does not fit {arch}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    model.eval()


def rgb_dataset(dataset: Dataset) -> Dataset:
    """A grayscale dataset with its channel repeated to RGB (for models that take 3-channel input)."""
    info = replace(dataset.info, channels=3, mean=dataset.info.mean * 3, std=dataset.info.std * 3)
    return Dataset(info, RepeatChannels(dataset.train), RepeatChannels(dataset.calib),  # type: ignore[arg-type]
                   RepeatChannels(dataset.test))  # type: ignore[arg-type]


def dataset_for_arch(dataset: Dataset, arch: str) -> tuple[Dataset, str | None]:
    """`dataset` as a model of `arch` takes it, and a note when grayscale images are repeated to RGB."""
    channels = model_channels(arch, dataset.info.channels)
    if channels == dataset.info.channels:
        return dataset, None
    return rgb_dataset(dataset), (f"{dataset.info.name} is grayscale and {arch} takes 3-channel input: "
                                  "its channel is repeated to RGB")


def load_dataset_for(spec: ModelSpec, name: str | None = None, *, data_dir: Path | None = None,
                     cache_dir: Path | None = None) -> Dataset:
    """The checkpoint's dataset (or `name`), checked to have the classes and channels the model expects."""
    dataset = load_dataset(name or spec.dataset, data_dir=data_dir, cache_dir=cache_dir)
    if dataset.info.channels == 1 and spec.in_channels == 3:
        dataset = rgb_dataset(dataset)
    if (dataset.info.num_classes, dataset.info.channels) != (spec.num_classes, spec.in_channels):
        raise CompressorError(f"dataset {dataset.info.name} ({dataset.info.num_classes} classes, "
                              f"{dataset.info.channels} channels) does not fit the checkpoint "
                              f"({spec.num_classes} classes, {spec.in_channels} channels)")
    return dataset
