"""`supcon` user errors end in one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from supcon.cli import main


def _fails(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Traceback" not in err
    return err


def test_bad_optimizer(capsys, tmp_path: Path) -> None:
    assert "unknown optimizer 'lamb'; choose one of: sgd, adamw" in _fails(
        ["pretrain", "-o", str(tmp_path / "p.pt"), "--optimizer", "lamb"], capsys)


def test_bad_crop_and_views(capsys, tmp_path: Path) -> None:
    assert "crop_scale" in _fails(["pretrain", "-o", str(tmp_path / "p.pt"), "--crop-min", "0"], capsys)
    assert "views must be at least 1" in _fails(["pretrain", "-o", str(tmp_path / "p.pt"), "--views", "0"], capsys)


def test_baseline_needs_exactly_one_budget(capsys, tmp_path: Path) -> None:
    assert "exactly one of --epochs" in _fails(["baseline", "-o", str(tmp_path / "c.pt")], capsys)


def test_corrupt_or_missing_pretraining_checkpoint(capsys, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    assert "cannot read pre-training checkpoint" in _fails(["linear", str(junk), "-o", str(tmp_path / "c.pt")],
                                                           capsys)
    assert "does not exist" in _fails(["tsne", str(tmp_path / "none.pt"), "-o", str(tmp_path / "t.png")], capsys)


def test_evaluate_rejects_unknown_split(capsys, tmp_path: Path) -> None:
    assert "--split must be test or calib" in _fails(["evaluate", str(tmp_path / "c.pt"), "--split", "train"],
                                                     capsys)


def test_unavailable_device(capsys, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "CUDA is not available here" in _fails(["pretrain", "-o", str(tmp_path / "p.pt"), "--device", "cuda"],
                                                  capsys)
    assert "--device must be cpu or cuda" in _fails(["pretrain", "-o", str(tmp_path / "p.pt"), "--device", "tpu"],
                                                    capsys)
