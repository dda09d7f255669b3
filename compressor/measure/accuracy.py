"""Classification quality on a named split: top-1, top-5, macro precision/recall/F1 (scikit-learn)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score, precision_score, recall_score
from torch import nn

from compressor.data import Split

Forward = Callable[[torch.Tensor], torch.Tensor]


def torch_forward(model: nn.Module) -> Forward:
    """A forward function running `model` in eval mode without autograd."""
    model.eval()
    device = next(model.parameters()).device

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x.to(device)).float().cpu()

    return forward


def onnx_forward(session: Any) -> Forward:
    """A forward function running an ONNX Runtime session, so the exported artifact itself is evaluated."""
    input_name = session.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: x.numpy().astype(np.float32)})[0])

    return forward


def predict(forward: Forward, split: Split, input_size: int, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, classes] and labels [N] of `forward` over `split` in order."""
    logits, labels = [], []
    for x, y in split.batches(input_size, batch_size):
        logits.append(forward(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 (and top-5 when there are more than 5 classes) accuracy and macro precision/recall/F1."""
    num_classes = logits.shape[1]
    predictions = logits.argmax(axis=1)
    all_labels = list(range(num_classes))
    metrics = {"accuracy": float((predictions == labels).mean())}
    if num_classes > 5:
        top5 = np.argsort(-logits, axis=1)[:, :5]
        metrics["top5"] = float((top5 == labels[:, None]).any(axis=1).mean())
    for name, fn in (("precision_macro", precision_score), ("recall_macro", recall_score), ("f1_macro", f1_score)):
        metrics[name] = float(fn(labels, predictions, labels=all_labels, average="macro", zero_division=0))
    return metrics


def evaluate(forward: Forward, split: Split, input_size: int, batch_size: int = 256) -> dict[str, float]:
    """Metrics of `forward` on `split`, plus the number of samples they were computed on."""
    logits, labels = predict(forward, split, input_size, batch_size)
    return {**classification_metrics(logits, labels), "samples": int(len(labels))}


def pack_correct(logits: np.ndarray, labels: np.ndarray) -> str:
    """Which test images the model got right, one bit each, base64: what McNemar's test pairs two models on."""
    import base64

    return base64.b64encode(np.packbits(logits.argmax(axis=1) == labels).tobytes()).decode("ascii")


def unpack_correct(packed: str, samples: int) -> np.ndarray:
    """The boolean vector `pack_correct` stored, `samples` long."""
    import base64

    return np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))[:samples].astype(bool)
