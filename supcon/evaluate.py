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
from compressor.fileio import write_atomic
from compressor.measure.accuracy import classification_metrics, predict, torch_forward


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


def plot_confusion(result: dict[str, Any], path: Path, title: str) -> Path:
    """Row-normalized confusion matrix as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(result["confusion_matrix"], dtype=float)
    rates = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
    classes = result["classes"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(classes), 0.8 + 0.5 * len(classes)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


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


def plot_tsne(panels: list[tuple[str, np.ndarray]], labels: np.ndarray, classes: tuple[str, ...],
              path: Path) -> Path:
    """Side-by-side t-SNE scatter plots (one per panel title), coloured by class, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for ax, (title, points) in zip(axes[0], panels):
        for index, name in enumerate(classes):
            chosen = labels == index
            ax.scatter(points[chosen, 0], points[chosen, 1], s=3, color=cmap(index % cmap.N), label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, fontsize=8, frameon=False)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


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
