"""Images per second an `imagefolder:` split delivers at 224 px: evaluation batches and training batches (random
resized crop and flip), through `FolderSplit.batches`, the path every run, fine-tune and score takes.

It writes a 224 px JPEG ImageFolder from Fashion-MNIST's first test images (upsampled, grey to RGB; made once under
--folder), then times one pass of each kind per worker count, after one untimed warm-up pass. The worker count goes
through $COMPRESSOR_DATA_WORKERS, so the same script measures an older checkout (decoding in the main process, which
ignores it) by running with that checkout first on PYTHONPATH:

    .venv/bin/python scripts/folder_throughput.py -o reports/data-path/after.json --workers 0,2
    PYTHONPATH=/path/to/old/checkout .venv/bin/python scripts/folder_throughput.py -o reports/data-path/before.json

Run it alone: it measures the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def make_folder(root: Path, images: int, size: int) -> Path:
    """A train/ + test/ ImageFolder of `images` JPEGs per split from Fashion-MNIST, at `size` px (kept if present)."""
    from PIL import Image

    from compressor.data import load_dataset

    if (root / "done").exists():
        return root
    test = load_dataset("fashion-mnist", download=False).test
    for split in ("train", "test"):
        for i in range(images):
            label = int(test.labels[i])
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = test.images[i, 0].numpy()
            Image.fromarray(np.stack([pixels] * 3, axis=-1)).resize((size, size), Image.BILINEAR).save(
                folder / f"{i}.jpg", quality=90)
    (root / "done").write_text("")
    return root


def images_per_second(split: object, input_size: int, batch_size: int, augment: bool) -> float:
    """One timed pass over `split` after an untimed one (the warm-up also starts persistent workers)."""
    for _ in split.batches(input_size, batch_size, shuffle=augment, augment=augment, seed=0):
        pass
    started = time.perf_counter()
    seen = sum(len(y) for _, y in split.batches(input_size, batch_size, shuffle=augment, augment=augment, seed=1))
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file for the result")
    parser.add_argument("--folder", type=Path, default=Path("runs/folder-224px"), help="the ImageFolder (made once)")
    parser.add_argument("--images", type=int, default=1000, help="images per split")
    parser.add_argument("--workers", default="0", help="comma-separated worker counts to time")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import compressor
    try:
        from compressor._util.environment import environment
    except ImportError:  # a checkout from before the stages became folders
        from compressor.environment import environment
    from compressor.data import load_dataset

    root = make_folder(args.folder, args.images, 224)
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        os.environ["COMPRESSOR_DATA_WORKERS"] = str(workers)
        dataset = load_dataset(f"imagefolder:{root}")
        for kind, split, augment in (("evaluation", dataset.test, False), ("training", dataset.train, True)):
            rate = images_per_second(split, 224, args.batch_size, augment)
            results.append({"kind": kind, "workers": workers, "images": len(split),
                            "images_per_second": round(rate, 1)})
            print(f"{kind:10s} workers={workers}: {rate:7.1f} images/s over {len(split)} images")
    document = {"what": "FolderSplit.batches images/s at 224 px, one timed pass after a warm-up",
                "package": str(Path(compressor.__file__).parent), "batch_size": args.batch_size,
                "command": " ".join(["python", *sys.argv]), "pythonpath": os.environ.get("PYTHONPATH"),
                "results": results, "environment": environment()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
