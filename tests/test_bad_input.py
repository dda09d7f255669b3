"""Bad input anywhere a user can type or pass something: one clear line on stderr, exit code 2, no traceback.

docs/reliability.md lists these cases in its "Bad-input cases" table; keep the two in step.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from compressor.models.checkpoint import Checkpoint, ModelSpec, save_checkpoint
from compressor.models.zoo import build_model

COMPRESSOR_BAD = [
    # CLI options of `compressor`
    ("unknown strategy", ["run", "-s", "l0"], "unknown strategy 'l0'; choose one of:"),
    ("unknown arch", ["run", "-s", "l1", "--arch", "vgg11"], "unknown architecture 'vgg11'; give a registered name"),
    ("unknown dataset", ["run", "-s", "l1", "--data", "mnist"], "unknown dataset 'mnist'; choose one of:"),
    ("unknown backend", ["run", "-s", "l1", "--backends", "tensorrt"], "unknown backend 'tensorrt'"),
    ("unknown compression", ["run", "-s", "l1", "--compress", "gzip"], "unknown compression 'gzip'"),
    ("amount negative", ["run", "-s", "l1", "--amount", "-0.1"], "l1.amount must be a number in [0, 1); got -0.1"),
    ("amount = 1", ["run", "-s", "l1", "--amount", "1"], "l1.amount must be a number in [0, 1); got 1"),
    ("amount NaN", ["run", "-s", "l1", "--amount", "nan"], "l1.amount must be a number in [0, 1); got nan"),
    ("amount text", ["run", "-s", "l1", "--amount", "half"], "l1.amount must be a number; got 'half'"),
    ("amount on a strategy without one", ["run", "-s", "int8", "--amount", "0.5"], "--amount does not apply"),
    ("unknown parameter", ["run", "-s", "l1", "-p", "depth=3"], "no strategy in the pipeline has a parameter"),
    ("bad parameter value", ["run", "-s", "l1", "-p", "scope=everywhere"], "l1.scope must be one of"),
    ("fine-tune epochs infinite", ["run", "-s", "l1", "--finetune-epochs", "inf"],
     "--finetune-epochs must be a finite number ≥ 0; got inf"),
    ("fine-tune LR zero", ["run", "-s", "l1", "--finetune-lr", "0"], "--finetune-lr must be a finite number > 0"),
    ("unknown recipe", ["run", "-s", "l1", "--recipe", "fast"],
     "unknown recipe 'fast'; choose one of standard, anchor"),
    ("unknown precision", ["train", "-o", "{tmp}/t.pt", "--precision", "fp16"],
     "--precision must be one of fp32, bf16, auto; got 'fp16'"),
    ("unknown recovery recipe", ["run", "-s", "l1", "--recovery-recipe", "supcon"],
     "--recovery-recipe must be one of auto, standard, frozen-encoder; got 'supcon'"),
    ("threads zero", ["run", "-s", "l1", "--threads", "0"], "--threads must be at least 1"),
    ("step after int8", ["run", "-s", "int8+l1"], "int8 acts on the exported model and must be the last step"),
    ("blocks on an arch without blocks", ["run", "-s", "blocks", "-p", "blocks=layer4", "--arch", "inception_v3",
                                          "--dry-run"], "blocks found no removable block in Inception3"),
    ("unknown block", ["run", "-s", "blocks", "-p", "blocks=layer9", "--dry-run"], "unknown ResNet block 'layer9'"),
    ("--arch contradicts --model", ["run", "-s", "l1", "--model", "{ckpt}", "--arch", "densenet201"],
     "--arch densenet201 contradicts the checkpoint"),
    ("input size too small", ["bench", "--arch", "densenet201", "--input-size", "16"], "too small for densenet201"),
    ("bench with --model and --arch", ["bench", "--arch", "resnet18", "--model", "{ckpt}"], "exactly one of"),
    ("sweep shard out of range", ["sweep", "--out", "{tmp}/s", "--strategies", "l1", "--shard", "2/2"],
     "--shard must be i/n"),
    ("sweep negative fine-tune", ["sweep", "--out", "{tmp}/s", "--strategies", "l1", "--finetune-epochs", "-1"],
     "--finetune-epochs must be a finite number ≥ 0"),
    ("report budget negative", ["report", "{tmp}", "--out", "{tmp}/r", "--max-size-mb", "-1"],
     "--max-size-mb must be a positive number"),
    ("report accuracy floor > 1", ["report", "{tmp}", "--out", "{tmp}/r", "--min-accuracy", "90"],
     "--min-accuracy is a fraction in (0, 1]"),
    ("export format", ["export", "{tmp}/sub", "--model", "{ckpt}", "--format", "tflite"], "unknown --format"),
    ("score data not an ImageFolder", ["score", "{tmp}", "--data", "digits"], "imagefolder:PATH"),
    ("baseline seed with --model", ["run", "-s", "l1", "--model", "{ckpt}", "--baseline-seed", "1"],
     "--baseline-seed picks the cached baseline to train or reuse; with --model"),
    ("baseline seeds with --model", ["sweep", "--out", "{tmp}/s", "--strategies", "l1", "--model", "{ckpt}",
                                     "--baseline-seeds", "1"], "--baseline-seeds picks cached baselines; it cannot"),
    # files
    ("checkpoint missing", ["run", "-s", "l1", "--model", "{tmp}/none.pt"], "does not exist"),
    ("checkpoint empty", ["run", "-s", "l1", "--model", "{empty}"], "empty, truncated or not a torch file"),
    ("checkpoint truncated", ["run", "-s", "l1", "--model", "{truncated}"], "empty, truncated or not a torch file"),
    ("checkpoint is JSON", ["run", "-s", "l1", "--model", "{json}"], "empty, truncated or not a torch file"),
    ("torch file that is no checkpoint", ["run", "-s", "l1", "--model", "{tensor}"],
     "is neither a compressor checkpoint nor a state_dict"),
    ("weights of another architecture", ["run", "-s", "l1", "--model", "{other_arch}"],
     "weights do not fit its resnet50 structure"),
    ("edits naming a missing layer", ["run", "-s", "l1", "--model", "{bad_edits}"],
     "its structural edits do not apply to resnet18 (AttributeError"),
    ("sweep grid missing", ["sweep", "--out", "{tmp}/s", "--grid", "{tmp}/none.toml"], "does not exist"),
    ("sweep grid not TOML", ["sweep", "--out", "{tmp}/s", "--grid", "{json}"], "is not valid TOML"),
    ("report input not a run report", ["report", "{json}", "--out", "{tmp}/r"], "is not a run report"),
    ("score file not a score", ["report", "{tmp}", "--out", "{tmp}/r", "--openaimer", "{json}"],
     "is not a score of a checkpoint"),
    ("output is a directory", ["run", "-s", "l1", "--output", "{tmp}", "--dry-run"], "is a directory"),
    ("output under a file", ["train", "-o", "{json}/x.pt"], "is a file, not a directory"),
    # data
    ("ImageFolder missing", ["run", "-s", "l1", "--data", "imagefolder:{tmp}/nowhere", "--dry-run"],
     "is not a directory"),
    ("ImageFolder with one class", ["run", "-s", "l1", "--data", "imagefolder:{one_class}", "--dry-run"],
     "has 1 class(es); a classifier needs at least 2"),
    ("unreadable image", ["train", "-o", "{tmp}/t.pt", "--data", "imagefolder:{corrupt}", "--epochs", "1",
                          "--input-size", "32"], "cannot read image"),
    ("dataset without the model's classes", ["run", "-s", "l1", "--model", "{ckpt}", "--data",
                                             "imagefolder:{few}", "--dry-run"], "does not fit the checkpoint"),
    ("sweep jobs zero", ["sweep", "-o", "{tmp}/s", "--strategies", "l1", "--jobs", "0"],
     "--jobs must be 1 or more; got 0"),
    ("sweep timing unknown", ["sweep", "-o", "{tmp}/s", "--strategies", "l1", "--jobs", "2", "--timing",
                              "sometimes"],
     "--timing must be serial or parallel; got 'sometimes'"),
    ("sweep cell timeout zero", ["sweep", "-o", "{tmp}/s", "--strategies", "l1", "--cell-timeout", "0"],
     "--cell-timeout must be a positive number of seconds; got 0.0"),
    ("sweep executor unknown", ["sweep", "-o", "{tmp}/s", "--strategies", "l1", "--executor", "cloud"],
     "--executor must be one of local, submitit-local, slurm; got 'cloud'"),
]

SUPCON_BAD = [
    ("supcon: unknown optimizer", ["pretrain", "-o", "{tmp}/p.pt", "--optimizer", "lamb"], "unknown optimizer"),
    ("supcon: temperature zero", ["pretrain", "-o", "{tmp}/p.pt", "--temperature", "0"], "temperature"),
    ("supcon: fewer samples than a batch", ["pretrain", "-o", "{tmp}/p.pt", "--data", "imagefolder:{few}",
                                            "--batch-size", "64", "--input-size", "32"], "fewer than one batch"),
    ("supcon: classifier checkpoint given for pre-training", ["linear", "{ckpt}", "-o", "{tmp}/c.pt"],
     "is not a SupCon pre-training checkpoint"),
    ("supcon: unknown split", ["evaluate", "{ckpt}", "--split", "train"], "--split must be test or calib"),
]


def _image(path: Path, colour: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), (colour, 255 - colour, 40)).save(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bad")
    spec = ModelSpec("resnet18", 10, 1, 32, "digits", tuple(str(i) for i in range(10)), (0.5,), (0.25,))
    torch.manual_seed(0)
    save_checkpoint(Checkpoint(spec, build_model("resnet18", 10, 1)), tmp / "ckpt.pt")
    payload = torch.load(tmp / "ckpt.pt", weights_only=True)
    torch.save({**payload, "spec": {**payload["spec"], "arch": "resnet50"}}, tmp / "other_arch.pt")
    torch.save({**payload, "edits": [{"op": "delete", "path": "layer9.0"},
                                      {"op": "replace", "path": "fc", "module": {"type": "Linear", "args": {"x": 1}}}]},
               tmp / "bad_edits.pt")
    (tmp / "empty.pt").write_bytes(b"")
    whole = (tmp / "ckpt.pt").read_bytes()
    (tmp / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (tmp / "data.json").write_text(json.dumps({"schema": "something/else"}))
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    for i in range(6):
        _image(tmp / "one_class" / "cat" / f"{i}.png", 10 * i)
        _image(tmp / "corrupt" / ("cat" if i % 2 else "dog") / f"{i}.png", 10 * i)
        _image(tmp / "few" / ("cat" if i % 2 else "dog") / f"{i}.png", 10 * i)
    for i in (0, 2, 4):
        (tmp / "corrupt" / "dog" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    names = ("ckpt", "other_arch", "bad_edits", "empty", "truncated", "tensor")
    return {"tmp": str(tmp), "json": str(tmp / "data.json"), "one_class": str(tmp / "one_class"),
            "corrupt": str(tmp / "corrupt"), "few": str(tmp / "few"), **{n: str(tmp / f"{n}.pt") for n in names}}


def _expect_one_line_error(program: str, args: list[str], fragment: str, files: dict[str, str]) -> None:
    code, _, stderr = run_cli(program, [a.format(**files) for a in args])
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert fragment.format(**files) in lines[0]


@pytest.mark.parametrize("args, fragment", [case[1:] for case in COMPRESSOR_BAD],
                         ids=[case[0] for case in COMPRESSOR_BAD])
def test_compressor_bad_input(args: list[str], fragment: str, files: dict[str, str]) -> None:
    _expect_one_line_error("compressor", args, fragment, files)


@pytest.mark.parametrize("args, fragment", [case[1:] for case in SUPCON_BAD], ids=[case[0] for case in SUPCON_BAD])
def test_supcon_bad_input(args: list[str], fragment: str, files: dict[str, str]) -> None:
    _expect_one_line_error("supcon", args, fragment, files)


def test_the_reliability_page_states_the_number_of_cases_and_lists_each() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "reliability.md").read_text()
    claimed = int(re.search(r"`tests/test_bad_input.py` runs the (\d+) cases", page).group(1))
    table = page[page.index("Inputs covered by `tests/test_bad_input.py`"):]
    rows = re.findall(r"^\| (\d+) \|", table.split("\n\n", 2)[1], flags=re.M)
    assert claimed == len(COMPRESSOR_BAD) + len(SUPCON_BAD) == len(rows) == int(rows[-1])
    root = Path(__file__).resolve().parent.parent
    assert f"({claimed} cases in `tests/test_bad_input.py`)" in (root / "README.md").read_text()
    assert f"; {claimed} cases are listed" in (root / "docs" / "commands.md").read_text()


JUNK_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 5).map(str),
                        st.text(max_size=6))


def mostly(valid: st.SearchStrategy, junk: st.SearchStrategy) -> st.SearchStrategy:
    """Usually absent or valid, sometimes junk: a bad value is caught early, so most examples must get past it."""
    return st.one_of(st.none(), valid, valid, valid, junk)


VALID_STRATEGIES = st.sampled_from(["l1", "layer-sensitive", "blocks", "channels", "nm", "int8", "obd", "fishleg",
                                    "woodfisher", "l1+int8", "blocks+l1", "nm+l1", "channels+int8"])
STRATEGIES = st.one_of(VALID_STRATEGIES, VALID_STRATEGIES, VALID_STRATEGIES,
                       st.sampled_from(["int8+l1", "", "+", "l1+", "L1"]), st.text(max_size=8))
PARAMS = st.lists(st.one_of(st.sampled_from(["scope=layer", "blocks=layer4", "blocks=layer3.1,layer4",
                                             "preset=competition", "n=1", "m=8", "l1.amount=0.2",
                                             "blocks=denseblock4", "importance=l1"]),
                            st.sampled_from(["x", "n=3", "m=2", "l1.amount=2", "blocks=layer9", "=1"]),
                            st.text(max_size=10)), max_size=1)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strategy=STRATEGIES, param=PARAMS,
       amount=mostly(st.sampled_from(["0", "0.5", "0.9", "0.999"]), JUNK_NUMBER),
       arch=mostly(st.sampled_from(["resnet18", "resnet50", "densenet201", "inception_v3"]), st.text(max_size=8)),
       data=mostly(st.just("digits"), st.sampled_from(["cifar", "imagefolder:", "imagefolder:/nowhere", ""])),
       threads=mostly(st.integers(1, 3), st.integers(-2, 0)),
       epochs=mostly(st.sampled_from(["0", "0.25", "2"]), JUNK_NUMBER),
       backends=mostly(st.sampled_from(["torch", "onnxruntime", "torch,onnxruntime"]),
                       st.sampled_from(["", "tvm", "torch,,", "TORCH"])),
       model=st.sampled_from([None, None, "ckpt", "empty", "other_arch"]))
def test_generated_run_options_exit_0_or_2_never_a_traceback(files, strategy, amount, arch, data, param, threads,
                                                             epochs, backends, model) -> None:
    args = ["run", "--dry-run", "--strategy", strategy, "--output", f"{files['tmp']}/fuzz.json"]
    for option, value in (("--amount", amount), ("--arch", arch), ("--data", data), ("--threads", threads),
                          ("--finetune-epochs", epochs), ("--backends", backends),
                          ("--model", files[model] if model else None)):
        if value is not None:
            args += [option, str(value)]
    for item in param:
        args += ["--param", item]
    code, _, stderr = run_cli("compressor", args)
    if os.environ.get("FUZZ_LOG"):
        with open(os.environ["FUZZ_LOG"], "a") as log:
            log.write(f"{code} {stderr.strip()[:150]!r}\n")
    assert code in (0, 2), stderr
    assert "Traceback" not in stderr
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
