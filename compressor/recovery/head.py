"""Re-fit a classifier's final linear layer on its penultimate features (the linear probe of a frozen encoder):
after compression has moved the features, the head is fitted again to what the encoder now produces."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from compressor.data.loaders import Split
from compressor.errors import CompressorError


@dataclass(frozen=True)
class LinearConfig:
    """Training of the linear classifier on standardized features (SGD + Nesterov, cosine schedule)."""

    epochs: int = 30
    lr: float = 0.1
    batch_size: int = 256
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise CompressorError(f"linear epochs and batch size must be at least 1; got {self.epochs}, "
                                  f"{self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise CompressorError(f"linear lr must be positive and weight decay not negative; got {self.lr}, "
                                  f"{self.weight_decay}")


def classifier_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's final nn.Linear (last in module order), which maps penultimate features to class logits."""
    linears = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise CompressorError(f"the head can only be re-fitted on a model that ends in nn.Linear; "
                              f"{type(model).__name__} has none")
    return linears[-1]


def penultimate_features(model: nn.Module, split: Split, input_size: int, *,
                         batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of the final linear layer [N, width] and labels [N] over `split`, in eval mode, un-augmented."""
    _, head = classifier_layer(model)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].detach().float().cpu()))
    device = next(model.parameters()).device
    labels = []
    model.eval()
    try:
        with torch.inference_mode():
            for x, y in split.batches(input_size, batch_size):
                model(x.to(device))
                labels.append(y)
    finally:
        hook.remove()
    return torch.cat(captured).flatten(1), torch.cat(labels)


def fit_linear(features: torch.Tensor, labels: torch.Tensor, num_classes: int, config: LinearConfig,
               keep: torch.Tensor | None = None) -> tuple[nn.Linear, list[float]]:
    """A linear classifier on `features` whose standardization (train mean/std) is folded into its weights;
    weights outside the `keep` mask stay exactly zero (folding scales a weight, never revives a zero)."""
    torch.manual_seed(config.seed)
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    standardized = (features - mean) / std
    linear = nn.Linear(features.shape[1], num_classes)
    if keep is not None:
        with torch.no_grad():
            linear.weight.masked_fill_(~keep, 0.0)
    optimizer = torch.optim.SGD(linear.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    losses = []
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            loss = nn.functional.cross_entropy(linear(standardized[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if keep is not None:
                with torch.no_grad():
                    linear.weight.masked_fill_(~keep, 0.0)
            total += loss.item() * len(index)
        scheduler.step()
        losses.append(total / len(labels))
    folded = nn.Linear(features.shape[1], num_classes)
    with torch.no_grad():
        folded.weight.copy_(linear.weight / std)
        folded.bias.copy_(linear.bias - (linear.weight * (mean / std)).sum(1))
    return folded, losses


def refit_classifier(model: nn.Module, split: Split, input_size: int,
                     config: LinearConfig = LinearConfig()) -> dict[str, Any]:
    """Fit the model's final linear layer again, in place, on its penultimate features over `split` (pruned head
    weights stay zero); returns the record (layer, images, width, seconds, train accuracy before and after)."""
    started = time.perf_counter()
    name, head = classifier_layer(model)
    features, labels = penultimate_features(model, split, input_size)
    if features.shape[1] != head.in_features:
        raise CompressorError(f"the final linear layer {name} takes {head.in_features} features but receives "
                              f"{features.shape[1]}; its head cannot be re-fitted")
    if head.bias is None:
        raise CompressorError(f"the final linear layer {name} has no bias; its head cannot be re-fitted")
    weight, bias = head.weight.detach().cpu(), head.bias.detach().cpu()
    keep = weight != 0
    before = float((nn.functional.linear(features, weight, bias).argmax(1) == labels).float().mean())
    fitted, losses = fit_linear(features, labels, head.out_features, config, keep=None if bool(keep.all()) else keep)
    with torch.no_grad():
        head.weight.copy_(fitted.weight.to(head.weight.device))
        head.bias.copy_(fitted.bias.to(head.bias.device))
        after = float((fitted(features).argmax(1) == labels).float().mean())
    return {"layer": name, "images": len(labels), "width": int(features.shape[1]), **asdict(config),
            "final_loss": round(losses[-1], 4), "train_accuracy_before": round(before, 4),
            "train_accuracy_after": round(after, 4), "seconds": round(time.perf_counter() - started, 2)}
