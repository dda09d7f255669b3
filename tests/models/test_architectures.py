"""Any architecture in the CLI: torchvision:NAME and module:factory models trained or imported from a plain
state_dict, compressed structurally, saved, reloaded exactly and measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.models.checkpoint import load_checkpoint
from compressor.models.zoo import build_model

QUICK = ["--quiet", "--backends", "onnxruntime", "--compress", "none", "--device", "cpu"]

# these tests check what is measured, not how fast: the in-process runs time with conftest's quick plan
pytestmark = pytest.mark.usefixtures("quick_timing")


def _same_outputs(path: Path, model: torch.nn.Module, channels: int, size: int) -> None:
    reloaded = load_checkpoint(path).model.eval()
    x = torch.randn(3, channels, size, size)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model.eval()(x))


def test_a_torchvision_model_on_grayscale_data_is_channel_pruned_saved_reloaded_and_measured(
        invoke, tmp_path: Path) -> None:
    report = tmp_path / "mnv3.json"
    code, out, err = invoke("compressor", ["run", "-s", "channels", "--amount", "0.5", "--arch",
                                           "torchvision:mobilenet_v3_small", "--data", "digits", "--epochs", "1",
                                           "--cache-dir", str(tmp_path / "cache"), "-o", str(report), *QUICK])
    assert code == 0, err
    assert err.count("repeated to RGB") == 1
    data = json.loads(report.read_text())
    assert data["model"]["arch"] == "torchvision:mobilenet_v3_small" and data["model"]["in_channels"] == 3
    assert data["compressed"]["macs"] < data["baseline"]["macs"]
    checkpoint = load_checkpoint(report.with_suffix(".pt"))
    assert checkpoint.spec.arch == "torchvision:mobilenet_v3_small"
    _same_outputs(report.with_suffix(".pt"), checkpoint.model, 3, 32)
    code, out, err = invoke("compressor", ["bench", "--model", str(report.with_suffix(".pt")), "--backends",
                                           "onnxruntime", "--compress", "none", "--repeats", "1"])
    assert code == 0, err
    assert "accuracy" in out


def test_a_plain_state_dict_of_a_factory_architecture_is_compressed_and_reloads(invoke, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("factories:small_cnn", 10, 1)
    weights = tmp_path / "mine.pth"
    torch.save(model.state_dict(), weights)
    report = tmp_path / "factory.json"
    code, out, err = invoke("compressor", ["run", "-s", "channels", "--amount", "0.5", "-p", "importance=l1",
                                           "--model", str(weights), "--arch", "factories:small_cnn",
                                           "-o", str(report), *QUICK])
    assert code == 0, err
    saved = load_checkpoint(report.with_suffix(".pt"))
    assert saved.spec.arch == "factories:small_cnn"
    assert saved.model[0].out_channels < 16
    _same_outputs(report.with_suffix(".pt"), saved.model, 1, 32)
    assert json.loads(report.read_text())["model"]["baseline"] == str(weights)


def test_a_safetensors_state_dict_loads(invoke, tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    weights = tmp_path / "mine.safetensors"
    safetensors_torch.save_file(build_model("factories:small_cnn", 10, 1).state_dict(), str(weights))
    code, out, err = invoke("compressor", ["run", "-s", "l1", "--amount", "0.5", "--model", str(weights), "--arch",
                                           "factories:small_cnn", "--dry-run"])
    assert code == 0, err


def test_a_state_dict_with_a_wrong_key_is_one_line_naming_it(invoke, tmp_path: Path) -> None:
    state = build_model("factories:small_cnn", 10, 1).state_dict()
    state["extra.weight"] = state.pop("0.weight")
    weights = tmp_path / "wrong.pt"
    torch.save(state, weights)
    code, out, err = invoke("compressor", ["run", "-s", "l1", "--model", str(weights), "--arch",
                                           "factories:small_cnn", "--dry-run"])
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "missing keys: 0.weight" in lines[0] and "unexpected keys: extra.weight" in lines[0]


def test_a_state_dict_without_arch_and_a_shape_mismatch_are_refused(invoke, tmp_path: Path) -> None:
    weights = tmp_path / "five.pt"
    torch.save(build_model("factories:small_cnn", 5, 1).state_dict(), weights)
    code, _, err = invoke("compressor", ["run", "-s", "l1", "--model", str(weights), "--dry-run"])
    assert code == 2 and "plain state_dict; pass --arch" in err
    code, _, err = invoke("compressor", ["run", "-s", "l1", "--model", str(weights), "--arch", "factories:small_cnn",
                                         "--dry-run"])
    assert code == 2 and "shape mismatch: 8.weight (5x32 in the file, 10x32 in factories:small_cnn)" in err
