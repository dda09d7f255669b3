"""Write the first N test images of each class of a built-in dataset as an ImageFolder (PNG files).

Folder names are `<index>-<class>` so that ImageFolder's sorted order is the model's class order, which is how
the OpenAImer evaluator maps folders to labels. Used by scripts/fashion-mnist-reports.sh.

    python scripts/test_split_imagefolder.py fashion-mnist OUT_DIR --per-class 100
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from compressor.data import load_dataset


def main() -> None:
    """Parse arguments and write the folder (skipped when it already holds the expected number of images)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=100)
    args = parser.parse_args()
    test = load_dataset(args.dataset).test
    classes = test.info.classes
    if len(classes) > 10:
        raise SystemExit("class folders are named by a one-digit index; this script handles up to 10 classes")
    labels = test.labels.numpy()
    expected = sum(min(args.per_class, int((labels == c).sum())) for c in range(len(classes)))
    if args.out.is_dir() and len(list(args.out.glob("*/*.png"))) == expected:
        print(f"{args.out}: {expected} images already there")
        return
    if args.out.exists():
        raise SystemExit(f"{args.out} exists but does not hold those {expected} images; remove it first")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    for index, name in enumerate(classes):
        folder = staging / f"{index}-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}"
        folder.mkdir()
        for i in np.flatnonzero(labels == index)[:args.per_class]:
            image = test.images[i].numpy()
            Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    os.replace(staging, args.out)  # all or nothing: a killed run never leaves a partial folder behind
    print(f"{args.out}: wrote {expected} images in {len(classes)} class folders")


if __name__ == "__main__":
    main()
