"""Sizes are real files: the sparse encoding round-trips bit for bit and is small when weights are sparse."""

from __future__ import annotations

import lzma
import os
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.measure.export import compress_file, load_sparse, save_sparse
from compressor.measure.size import artifact_sizes, write_artifacts
from compressor.models.zoo import build_model
from compressor.strategies.registry import build_strategy


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32) if t.dtype == torch.float32 else t.view(torch.int16) if t.dtype == torch.float16 else t


def test_sparse_encoding_roundtrips_bit_identically(tmp_path: Path) -> None:
    weight = torch.randn(64, 32, 3, 3)
    weight[torch.rand_like(weight) < 0.8] = 0.0
    weight[0, 0, 0, 0], weight[0, 0, 0, 1], weight[0, 0, 0, 2] = -0.0, float("nan"), float("inf")
    state = {"w": weight, "half": weight.half(), "dense": torch.randn(10), "steps": torch.tensor(7),
             "scalar": torch.tensor(0.0), "empty": torch.zeros(0)}
    save_sparse(state, tmp_path / "model.sparse.pt")
    loaded = load_sparse(tmp_path / "model.sparse.pt")
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        assert torch.equal(_bits(loaded[key]), _bits(value)), key


def test_reading_a_file_that_is_not_sparse_weights_fails_in_one_named_line(tmp_path: Path) -> None:
    plain, truncated = tmp_path / "plain.pt", tmp_path / "truncated.pt"
    torch.save({"w": torch.zeros(3)}, plain)
    save_sparse({"w": torch.zeros(3)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    for path, reason in ((plain, "is not a"), (truncated, "truncated"), (tmp_path / "missing.pt", "does not exist")):
        with pytest.raises(CompressorError, match=reason) as caught:
            load_sparse(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_sparse_file_at_90_percent_is_at_most_a_fifth_of_the_dense_file(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, 1)
    build_strategy("l1", {"amount": 0.9}).apply(model, None)
    files = write_artifacts(model, tmp_path, in_channels=1, input_size=32, onnx=False)
    dense, sparse = os.path.getsize(files["fp32"][0]), os.path.getsize(files["fp32-sparse"][0])
    assert sparse <= 0.2 * dense, (sparse, dense)
    reloaded = load_sparse(files["fp32-sparse"][0])
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded[key], value), key


def test_every_reported_size_is_the_size_of_an_existing_file(tmp_path: Path, tiny_net: nn.Module) -> None:
    sizes = artifact_sizes(write_artifacts(tiny_net, tmp_path, in_channels=1, input_size=16))
    names = {r["variant"] for r in sizes["variants"]}
    for base in ("fp32", "fp32-sparse", "fp16", "fp16-sparse", "onnx"):
        assert {base, f"{base}+zip", f"{base}+xz"} <= names
    for row in sizes["variants"]:
        assert Path(row["file"]).is_file() and row["bytes"] == os.path.getsize(row["file"])
        assert row["mb"] == round(row["bytes"] / 1e6, 4)
    lossless = [r for r in sizes["variants"] if r["lossless"]]
    deployable = [r for r in sizes["variants"] if r["deployable"]]
    assert len(deployable) == 1 and deployable[0]["bytes"] == min(r["bytes"] for r in lossless)
    assert not any(r["lossless"] for r in sizes["variants"] if r["variant"].startswith("fp16"))


def test_compressed_copies_decompress_to_the_original(tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(1000) + bytes(5000))
    with zipfile.ZipFile(compress_file(source, "zip")) as archive:
        assert archive.read("model.bin") == source.read_bytes()
    assert lzma.decompress(compress_file(source, "xz").read_bytes()) == source.read_bytes()
