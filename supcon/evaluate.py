"""Classifier metrics (accuracy, macro/weighted precision-recall-F1, per-class report, confusion matrix) and t-SNE."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report, confusion_matrix, f1_score
from torch import nn

from compressor.data import Split
from compressor.measure.accuracy import classification_metrics, predict, torch_forward
from compressor.report.plots import plot_tsne


def evaluate_classifier(model: nn.Module, split: Split, input_size: int, classes: tuple[str, ...]) -> dict[str, Any]:
    """Everything scikit-learn says about `model` on `split`: summary metrics, per-class report, confusion matrix."""
    logits, labels = predict(torch_forward(model), split, input_size)
    predictions = logits.argmax(axis=1)
    label_ids = list(range(len(classes)))
    report = classification_report(labels, predictions, labels=label_ids, target_names=list(classes),
                                   output_dict=True, zero_division=0)
    return {
        **classification_metrics(logits, labels),
        "f1_weighted": float(f1_score(labels, predictions, labels=label_ids, average="weighted", zero_division=0)),
        "samples": int(len(labels)),
        "per_class": {name: report[name] for name in classes},
        "confusion_matrix": confusion_matrix(labels, predictions, labels=label_ids).tolist(),
        "classes": list(classes),
    }


def tsne_embedding(features: torch.Tensor, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of L2-normalized features (PCA to 50 dimensions first, PCA initialization)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = torch.nn.functional.normalize(features.double(), dim=1).numpy()
    if x.shape[1] > 50 and len(x) > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(x)


def subsample(split: Split, samples: int, seed: int) -> Split:
    """A fixed-seed random subset of at most `samples` images (all of them when the split is smaller)."""
    if samples >= len(split):
        return split
    chosen = np.sort(np.random.default_rng(seed).choice(len(split), size=samples, replace=False))
    return split.subset(chosen)


def tsne_before_after(pretrained: Path, split: Split, path: Path, *, samples: int = 2000, seed: int = 0,
                      classifiers: dict[str, nn.Module] | None = None, show_progress: bool = True) -> dict[str, Any]:
    """t-SNE of encoder features on a test subsample: at initialization, after pre-training, and of `classifiers`.

    The initial encoder is rebuilt with the pre-training seed, so it is the network pre-training started from.
    """
    from supcon.linear import encode
    from supcon.model import SupConModel, remove_classifier
    from supcon.pretrain import PretrainConfig, build_pretrained, load_pretrain_checkpoint

    state = load_pretrain_checkpoint(pretrained)
    config = PretrainConfig.from_dict(state["config"])
    torch.manual_seed(config.seed)
    initial = SupConModel(config.arch, state["dataset"]["channels"], config.projection_dim)
    encoders = {"random init": initial.encoder,
                f"SupCon, {state['epoch']} epochs": build_pretrained(state).encoder}
    for title, classifier in (classifiers or {}).items():
        headless = copy.deepcopy(classifier)
        remove_classifier(headless, config.arch)
        encoders[title] = headless
    chosen = subsample(split, samples, seed)
    input_size = int(state["input_size"])
    panels, labels = [], None
    for title, encoder in encoders.items():
        features, labels = encode(encoder, chosen, input_size, description=f"features ({title})",
                                  show_progress=show_progress)
        panels.append((title, tsne_embedding(features, seed=seed)))
    classes = tuple(state["dataset"]["classes"])
    plot_tsne(panels, labels.numpy(), classes, path)
    return {"samples": len(chosen), "panels": [title for title, _ in panels], "path": str(path)}
