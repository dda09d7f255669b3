"""CLI: `compressor run` end to end on digits, and one-line errors with exit code 2 for user mistakes."""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.utils import prune

from compressor.models.checkpoint import load_checkpoint
from compressor.report.uncertainty import binomial_se
from compressor.strategies.selection import prunable_layers
from tests.conftest import within_noise

# Runs in this process time with the quick plan (conftest.quick_timing_plan): these tests check what is timed,
# never how fast. The runs in a subprocess (`_cli`), the first run among them, keep the default timing plan.
pytestmark = pytest.mark.usefixtures("quick_timing")

REQUIRED = ("accuracy", "f1_macro", "sparsity", "params_nonzero", "macs", "size_bytes", "latency_ms", "checkpoint")


def _cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "compressor", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("run")
    # `make demo`'s command, but zip copies only: xz of the ~180 MB of files per ResNet18 takes half a minute on 2
    # cores; test_run_writes_zip_and_xz_copies_by_default checks the default on a small model
    result = _cli(["run", "--strategy", "l1", "--amount", "0.5", "--cache-dir", str(work / "cache"),
                   "--output", str(work / "report.json"), "--quiet", "--compress", "zip"], work)
    return work, result


def test_run_trains_prunes_measures_and_reports(first_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, result = first_run
    assert result.returncode == 0, result.stderr
    assert "top-1 accuracy" in result.stdout and "compressed" in result.stdout
    report = json.loads((work / "report.json").read_text())
    for key in ("strategy", "params", "model", "dataset", "environment", "baseline", "compressed"):
        assert key in report
    assert report["strategy"] == "l1" and report["params"]["l1"]["amount"] == 0.5
    assert report["environment"]["torch_threads"] >= 1 and report["environment"]["packages"]["torch"]
    assert report["resources"]["peak_rss_bytes"] > 100 * 2**20  # torch and a ResNet18 are in memory
    for role in ("baseline", "compressed"):
        assert all(k in report[role] for k in REQUIRED), role
    base, comp = report["baseline"], report["compressed"]
    # Properties, not one machine's figures: training differs between CPUs in floating point, so what 50 % L1 costs
    # is a measurement (96.39 -> 95.56 % on an EPYC, 98.06 -> 95.56 % on a Xeon), not a law. Both models must be
    # far above chance (10 %): a floor more than 10 binomial standard errors (~1 point on 360 images) below both.
    for role in (base, comp):
        assert role["accuracy"] - 10 * binomial_se(role["accuracy"], role["samples"]) >= 0.8, role["accuracy"]
    assert abs(comp["f1_macro"] - comp["accuracy"]) < 0.02  # digits is balanced: macro F1 tracks accuracy
    assert base["sparsity"] == 0.0 and comp["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["steps"][0]["record"]["sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert comp["params_nonzero"] < 0.55 * base["params_nonzero"]
    assert comp["macs"] == base["macs"] and comp["latency"]["torch"]["runs"] >= 20
    assert comp["size_bytes"] == pytest.approx(base["size_bytes"], rel=0.01)
    reloaded = load_checkpoint(comp["checkpoint"])
    assert reloaded.spec.arch == "resnet18" and reloaded.history[-1]["strategy"] == "l1"
    # the defining relation: the run zeroes what torch's global L1 zeroes on the baseline's prunable layers
    reference = load_checkpoint(base["checkpoint"]).model
    layers = prunable_layers(reference)
    prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured,
                              amount=0.5)
    for name, module in layers.items():
        assert torch.equal(reloaded.model.get_submodule(name).weight != 0, module.weight_mask.bool()), name
    for role in (base, comp):
        assert {"size", "latency", "complexity", "evaluation"} <= set(role)
        assert set(role["latency"]) == {"torch", "onnxruntime"}
        assert role["evaluation"]["onnxruntime"]["top1_agreement_with_torch"] >= 0.99
    sparse = next(r for r in comp["size"]["variants"] if r["variant"] == "fp32-sparse")
    assert sparse["bytes"] < 0.7 * comp["size_bytes"]
    skipped = sum(r["macs"] - r["macs_sparse"] for r in comp["complexity"]["layers"])
    assert base["macs_sparse"] == base["macs"] and comp["macs_sparse"] == comp["macs"] - skipped > 0


def test_run_writes_zip_and_xz_copies_by_default(tmp_path: Path) -> None:
    import torch

    from compressor.models.zoo import build_model

    torch.manual_seed(0)
    weights = tmp_path / "small.pth"
    torch.save(build_model("factories:small_cnn", 10, 1).state_dict(), weights)
    code, _, stderr = _in_process(["run", "-s", "l1", "--amount", "0.5", "--model", str(weights), "--arch",
                                   "factories:small_cnn", "--quiet", "--backends", "torch",
                                   "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    expected = {f"{file}+{method}" for file in ("fp32", "fp32-sparse", "fp16", "fp16-sparse", "onnx")
                for method in ("zip", "xz")}
    for role in ("baseline", "compressed"):
        assert report[role]["measure_config"]["compressions"] == ["zip", "xz"]
        assert expected <= {row["variant"] for row in report[role]["size"]["variants"]}, role


def test_bench_measures_a_checkpoint_and_writes_json(first_run: tuple[Path, subprocess.CompletedProcess],
                                                      tmp_path: Path) -> None:
    work, _ = first_run
    checkpoint = json.loads((work / "report.json").read_text())["compressed"]["checkpoint"]
    code, stdout, stderr = _in_process(["bench", "--model", checkpoint, "--output", str(tmp_path / "b.json"),
                                        "--batch-size", "4", "--layers", "3", "--compress", "zip"])
    assert code == 0, stderr
    for title in ("size on disk", "latency, ms per call (batch 4, 32 px)", "accuracy on the test split", "complexity"):
        assert title in stdout
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["schema"] == "compressor.bench/1" and result["model"]["arch"] == "resnet18"
    measured = result["measurements"]
    assert measured["latency"]["torch"]["batch_size"] == 4 and "repeat_spread" in measured["latency"]["torch"]
    assert measured["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_json_prints_the_document_a_command_writes(first_run: tuple[Path, subprocess.CompletedProcess],
                                                   tmp_path: Path) -> None:
    """--json: stdout is the result document and nothing else (run's report, bench's result, report's rows)."""
    work, _ = first_run
    checkpoint = json.loads((work / "report.json").read_text())["compressed"]["checkpoint"]
    code, stdout, stderr = _in_process(["run", "-s", "l1", "--model", checkpoint, "--backends", "torch", "--quiet",
                                        "--compress", "none", "--output", str(tmp_path / "r.json"), "--json"])
    assert code == 0, stderr
    assert json.loads(stdout) == json.loads((tmp_path / "r.json").read_text())
    code, stdout, stderr = _in_process(["bench", "--model", checkpoint, "--backends", "torch", "--compress", "none",
                                        "--output", str(tmp_path / "b.json"), "--json"])
    assert code == 0, stderr
    assert json.loads(stdout) == json.loads((tmp_path / "b.json").read_text())
    code, stdout, stderr = _in_process(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "summary"),
                                        "--min-accuracy", "0.1", "--json"])
    assert code == 0, stderr
    printed = json.loads(stdout)
    assert printed["runs"] == json.loads((tmp_path / "summary" / "results.json").read_text())["rows"]
    assert printed["budget_pick"]["why"] and printed["report"] == str(tmp_path / "summary" / "README.md")


def test_bench_of_a_fresh_architecture_skips_accuracy(tmp_path: Path) -> None:
    code, stdout, stderr = _in_process(["bench", "--arch", "resnet18", "--input-size", "32", "--backends", "torch",
                                        "--repeats", "1", "--compress", "none", "--output", str(tmp_path / "b.json")])
    assert code == 0, stderr
    assert "accuracy: skipped" in stdout
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["model"]["num_classes"] == 1000 and set(result["measurements"]["latency"]) == {"torch"}


def test_second_run_reuses_the_cached_baseline(first_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, _ = first_run
    code, _, stderr = _in_process(["run", "-s", "l1", "--amount", "0.3", "-p", "scope=layer", "--cache-dir",
                                   str(work / "cache"), "--output", str(work / "second.json"), "--quiet",
                                   "--compress", "none", "--backends", "torch"])
    assert code == 0, stderr
    assert "using cached baseline" in stderr and "train resnet18" not in stderr
    report = json.loads((work / "second.json").read_text())
    assert report["params"]["l1"]["scope"] == "layer"
    assert report["compressed"]["sparsity"] == pytest.approx(0.3, abs=0.01)


def test_run_from_a_checkpoint_file(first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, _ = _in_process(["run", "-s", "l1", "--amount", "0.7", "--model", str(baseline), "--quiet",
                              "--output", str(tmp_path / "r.json"), "--compress", "none", "--backends", "torch"])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"]["baseline"] == str(baseline)
    assert report["compressed"]["sparsity"] == pytest.approx(0.7, abs=0.01)


def test_run_times_at_the_deployment_size_and_int8_runs_integer_kernels(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    # 32 calibration images instead of 256: six int8 quantizations here (three judged methods, the measured model,
    # the grid at 32 and 48 px); accuracy after int8 is checked by the test below, with the default 256
    code, out, err = _in_process(["run", "-s", "l1+int8", "--amount", "0.5", "-p", "calib_samples=32", "--model",
                                  str(baseline), "--quiet", "--output", str(tmp_path / "r.json"), "--compress",
                                  "none", "--backends", "onnxruntime", "--deploy-size", "48", "--batch-sizes", "1,2",
                                  "--thread-counts", "1"])
    assert code == 0, err
    assert "speed-up over the baseline" in out
    report = json.loads((tmp_path / "r.json").read_text())
    deployment, comp = report["deployment"], report["compressed"]
    assert deployment["deploy_size"] == 48 and deployment["trained_size"] == report["model"]["input_size"] == 32
    cells = {(r["input_size"], r["batch_size"], r["backend"]) for r in deployment["speedups"]}
    assert cells == {(s, b, k) for s in (32, 48) for b in (1, 2) for k in ("onnxruntime", "onnxruntime-int8")}
    assert all(r["baseline_backend"] == "onnxruntime" and r["threads"] == 1 for r in deployment["speedups"])
    grid = comp["latency_grid"]
    assert grid["macs"]["48"] > 2 * grid["macs"]["32"] and comp["input_size"] == 32
    assert grid["int8_kernels"]["48"]["runs_int8"] and grid["int8_kernels"]["32"]["runs_int8"]
    choice = comp["int8_calibration"]
    assert choice["judge_accuracy"][choice["chosen"]] == max(choice["judge_accuracy"].values())
    assert report["baseline"]["latency_grid"]["int8_kernels"] == {}


def _in_process(args: list[str]) -> tuple[int, str, str]:
    from conftest import run_cli

    return run_cli("compressor", args)


@pytest.mark.parametrize("args, fragment", [
    (["run", "-s", "l0"], "unknown strategy 'l0'; choose one of:"),
    (["run", "-s", "l1", "--amount", "1.5"], "l1.amount must be a number in [0, 1); got 1.5"),
    (["run", "-s", "l1", "--amount", "-0.1"], "l1.amount must be a number in [0, 1); got -0.1"),
    (["run", "-s", "l1", "--amount", "nan"], "l1.amount must be a number in [0, 1); got nan"),
    (["run", "-s", "l1", "--amount", "half"], "l1.amount must be a number; got 'half'"),
    (["run", "-s", "l1", "-p", "scope=everywhere"], "l1.scope must be one of global, layer; got 'everywhere'"),
    (["run", "-s", "l1", "-p", "depth=3"], "no strategy in the pipeline has a parameter 'depth'"),
    (["run", "-s", "l1", "-p", "oops"], "--param expects key=value"),
    (["run", "-s", "l1", "--data", "mnist"], "unknown dataset 'mnist'; choose one of: digits"),
    (["run", "-s", "l1", "--arch", "vgg11"], "unknown architecture 'vgg11'; give a registered name"),
    (["run", "-s", "l1", "--model", "/nonexistent/model.pt"], "checkpoint /nonexistent/model.pt does not exist"),
    (["run", "-s", "l1", "--threads", "0"], "--threads must be at least 1"),
    (["run", "-s", "l1", "--deploy-size", "0"], "--deploy-size must be an integer ≥ 1 (px); got 0"),
    (["run", "-s", "l1", "--batch-sizes", "1,0"], "--batch-sizes takes comma-separated integers ≥ 1; got 0"),
    (["run", "-s", "l1", "--thread-counts", "one"], "--thread-counts takes comma-separated integers ≥ 1; got 'one'"),
    (["run", "-s", "channels", "-p", "round_to=0"], "channels.round_to must be an integer of at least 1; got 0"),
    (["run", "-s", "l1", "--output", "report.pt"], "would collide with the checkpoint written beside the report"),
    (["run", "-s", "blocks"], "blocks needs names"),
    (["run", "-s", "blocks", "-p", "preset=tiny"], "blocks.preset must be one of none, competition; got 'tiny'"),
    (["run", "--amount", "0.5"], "Missing option '--strategy'"),
    (["run", "-s", "l1", "--bogus"], "No such option: --bogus"),
    (["run", "-s", "l1", "--backends", "tensorrt"], "unknown backend 'tensorrt'; choose from: torch, onnxruntime"),
    (["bench"], "bench needs exactly one of --model CKPT or --arch NAME"),
    (["bench", "--arch", "resnet18", "--model", "x.pt"], "bench needs exactly one of --model CKPT or --arch NAME"),
    (["bench", "--arch", "densenet201", "--input-size", "16"], "--input-size 16 is too small for densenet201"),
    (["bench", "--arch", "resnet18", "--repeats", "0"], "--repeats must be at least 1"),
    (["bench", "--arch", "resnet18", "--compress", "gzip"], "unknown compression 'gzip'; choose from: zip, xz"),
])
def test_user_errors_end_in_one_line_and_exit_code_2(args: list[str], fragment: str) -> None:
    code, _, stderr = _in_process(args)
    assert code == 2
    assert fragment in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_corrupt_checkpoint_fails_cleanly_at_the_real_entry_point(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    result = _cli(["run", "-s", "l1", "--model", str(bad)], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: cannot read checkpoint {bad}: empty, truncated or not a "
                                                  "torch file"]


def test_finetuning_recovers_accuracy_and_keeps_pruned_weights_zero(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, stdout, stderr = _in_process(["run", "-s", "l1", "--amount", "0.9", "--model", str(baseline), "--quiet",
                                        "--finetune-epochs", "2", "--bn-recalibrate", "--compress", "none",
                                        "--backends", "torch", "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    assert "top-1 before recovery" in stdout
    report = json.loads((tmp_path / "r.json").read_text())
    comp = report["compressed"]
    assert report["recovery"]["finetune"]["epochs"] == 2 and report["recovery"]["bn_images"] > 0
    assert comp["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert comp["accuracy"] > comp["accuracy_before_recovery"]
    steps = [entry["step"] for entry in load_checkpoint(comp["checkpoint"]).history]
    assert steps[-3:] == ["strategy", "bn_recalibrate", "finetune"]


def test_nm_then_l1_pipeline_records_every_step(first_run: tuple[Path, subprocess.CompletedProcess],
                                                 tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "nm+l1", "-p", "l1.amount=0.6", "--model", str(baseline), "--quiet",
                                   "--compress", "none", "--backends", "torch", "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["strategy"] == "nm+l1" and [s["strategy"] for s in report["steps"]] == ["nm", "l1"]
    assert report["params"]["nm"]["n"] == 2 and report["params"]["l1"]["amount"] == 0.6
    assert report["compressed"]["sparsity"] == pytest.approx(0.6, abs=0.01)


def test_channel_pruning_end_to_end_shrinks_the_deployed_model(first_run: tuple[Path, subprocess.CompletedProcess],
                                                               tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "channels", "--amount", "0.5", "--model", str(baseline), "--quiet",
                                   "--compress", "none", "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    base, comp = report["baseline"], report["compressed"]
    assert comp["macs"] < 0.5 * base["macs"] and comp["size_bytes"] < 0.5 * base["size_bytes"]
    assert comp["evaluation"]["onnxruntime"]["max_abs_logit_diff_vs_torch"] < 1e-3
    reloaded = load_checkpoint(comp["checkpoint"])
    assert reloaded.model.layer1[0].conv1.out_channels < 64


def test_layer_sensitive_prints_its_scan_and_writes_the_plot(first_run: tuple[Path, subprocess.CompletedProcess],
                                                            tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    # two scan ratios instead of the default five: the scan's printout, plot and cache are the same either way
    code, stdout, stderr = _in_process(["run", "-s", "layer-sensitive", "--amount", "0.7", "-p", "ratios=0.7,0.9",
                                        "--model", str(baseline), "--cache-dir", str(tmp_path / "cache"), "--quiet",
                                        "--compress", "none", "--backends", "torch",
                                        "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    assert "layer sensitivity (fresh scan" in stdout and "layer4.1.conv2" in stdout and "chosen ratio" in stdout
    report = json.loads((tmp_path / "r.json").read_text())
    plot = Path(report["plots"]["step1_sensitivity"])
    assert plot.is_file() and plot.read_bytes()[:4] == b"\x89PNG"
    assert report["compressed"]["sparsity"] == pytest.approx(0.7, abs=0.01)
    assert list((tmp_path / "cache" / "sensitivity").glob("*.json"))


def test_competition_slimming_then_l1_with_finetuning(first_run: tuple[Path, subprocess.CompletedProcess],
                                                     tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "blocks+l1", "-p", "preset=competition", "-p", "l1.amount=0.5",
                                   "--finetune-epochs", "15", "--finetune-lr", "0.1", "--model", str(baseline),
                                   "--quiet", "--compress", "zip", "--backends", "torch",
                                   "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    comp = report["compressed"]
    assert comp["params_total"] == 77_898 and comp["deployable_bytes"] < 200_000
    assert report["steps"][1]["record"]["sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert comp["accuracy"] > comp["accuracy_before_recovery"] and comp["accuracy"] > 0.9


def test_int8_measures_the_quantized_artifact(first_run: tuple[Path, subprocess.CompletedProcess],
                                              tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    # minmax calibration: "auto" (three quantizations judged on held-out images) is run and checked by the
    # deployment-size test above and by the blocks+l1+int8 chain
    code, stdout, stderr = _in_process(["run", "-s", "int8", "-p", "calibration=minmax", "--model", str(baseline),
                                        "--quiet", "--compress", "zip", "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    assert "latency ONNX Runtime int8" in stdout
    report = json.loads((tmp_path / "r.json").read_text())
    base, comp = report["baseline"], report["compressed"]
    assert comp["metrics_from"].startswith("int8") and comp["size"]["deployable"].startswith("onnx-int8")
    int8_file = next(r for r in comp["size"]["variants"] if r["variant"] == "onnx-int8")
    assert int8_file["bytes"] < 0.3 * comp["size_bytes"] and comp["deployable_bytes"] <= int8_file["bytes"]
    assert comp["accuracy"] == comp["evaluation"]["onnxruntime-int8"]["accuracy"]
    assert within_noise(comp["accuracy"], base["accuracy"], comp["samples"])
    assert comp["latency"]["onnxruntime-int8"]["runs"] >= 20
    assert base["latency"]["onnxruntime-int8"]["skipped"] == "no int8 artifact"


def test_chain_blocks_l1_int8(first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "blocks", "-s", "l1", "-s", "int8", "-p", "blocks=layer4",
                                   "-p", "l1.amount=0.5", "--model", str(baseline), "--quiet", "--compress", "none",
                                   "--backends", "onnxruntime", "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["strategy"] for s in report["steps"]] == ["blocks", "l1", "int8"]
    assert report["compressed"]["size"]["deployable"] == "onnx-int8"


def test_a_step_after_int8_is_refused(first_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "int8+l1", "--model", str(baseline), "--quiet"])
    assert code == 2 and "int8 acts on the exported model and must be the last step; l1 comes after it" in stderr


def test_report_summarizes_runs_as_markdown_csv_and_json(first_run: tuple[Path, subprocess.CompletedProcess],
                                                         tmp_path: Path) -> None:
    work, _ = first_run
    source = json.loads((work / "report.json").read_text())
    tuned = {**source, "recovery": {"finetune_epochs": 1}, "compressed": {**source["compressed"], "accuracy": 0.25},
             "environment": {**source["environment"], "torch_threads": 7, "git_commit": "0000000"}}
    (tmp_path / "tuned.json").write_text(json.dumps(tuned))
    code, stdout, stderr = _in_process(["report", str(work / "report.json"), str(tmp_path / "tuned.json"),
                                        "-o", str(tmp_path / "summary"), "--min-accuracy", "0.2"])
    assert code == 0, stderr
    assert "2 runs summarized" in stdout and "budget pick: l1" in stdout
    rows = json.loads((tmp_path / "summary" / "results.json").read_text())["rows"]
    assert [(r["pipeline"], r["finetune_epochs"], r["accuracy"]) for r in rows] == [
        ("l1", 0, source["compressed"]["accuracy"]), ("l1", 1, 0.25)]
    assert rows[0]["deployable_bytes"] == source["compressed"]["deployable_bytes"]
    assert rows[0]["latency_ort_ms"] == source["compressed"]["latency"]["onnxruntime"]["median_ms"]
    with open(tmp_path / "summary" / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    readme = (tmp_path / "summary" / "README.md").read_text()
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| pipeline | parameters |"))
    table = [line for line in itertools.takewhile(lambda line: line.startswith("|"), lines[start:])
             if not line.startswith("|---")]
    assert len(table) == 1 + 1 + 2  # header, baseline, two runs
    assert "## Cost" in readme and " GiB |" in readme  # the runs recorded their peak memory
    assert "| l1 | l1.amount=0.5 l1.scope=global | 1 | 0 | - | 25.00 ± 2.28 |" in readme  # sqrt(.25 * .75 / 360)
    assert source["command"] in readme and "compressor report" in readme
    assert "Pareto front, accuracy vs size" in readme and "Budget pick: l1" in readme
    assert (tmp_path / "summary" / "tradeoffs.png").read_bytes()[:4] == b"\x89PNG"
    environment = readme.split("## Environment")[1]
    assert environment.count(" (1 run)") == 2 and "torch threads 7," in environment
    dirty = " (uncommitted changes)" if source["environment"].get("git_dirty") else ""  # as the run started
    measured_at = (source["environment"]["git_commit"] + dirty) if source["environment"]["git_commit"] \
        else "not recorded"  # None outside a git checkout
    assert f"at git {', '.join(sorted([measured_at, '0000000' + dirty]))};" in environment


def test_report_merges_sweep_shards_counting_each_cell_once(first_run: tuple[Path, subprocess.CompletedProcess],
                                                            tmp_path: Path) -> None:
    from compressor.sweep import CELL_SCHEMA

    work, _ = first_run
    source = json.loads((work / "report.json").read_text())
    for shard, keys in (("a", ["k1", "k2"]), ("b", ["k2", "k3"])):
        (tmp_path / shard / "cells").mkdir(parents=True)
        for key in keys:
            record = {"schema": CELL_SCHEMA, "key": key, "status": "done", "cell": {}, "report": source}
            (tmp_path / shard / "cells" / f"{key}.json").write_text(json.dumps(record))
    failed = {"schema": CELL_SCHEMA, "key": "k4", "status": "failed", "cell": {}, "error": "error: it broke"}
    (tmp_path / "b" / "cells" / "k4.json").write_text(json.dumps(failed))
    code, stdout, stderr = _in_process(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--output",
                                        str(tmp_path / "merged")])
    assert code == 0, stderr
    assert "3 runs summarized" in stdout
    row = json.loads((tmp_path / "merged" / "results.json").read_text())["rows"][0]
    assert row["checkpoint"] == source["compressed"]["checkpoint"] and row["checkpoint"].endswith(".pt")
    assert row["baseline_checkpoint"] == source["baseline"]["checkpoint"]
    assert "1 sweep cells failed and are not in the tables:\n\n- `k4`: error: it broke" in \
        (tmp_path / "merged" / "README.md").read_text()
    code, _, stderr = _in_process(["report", str(tmp_path), "--out", str(tmp_path / "x")])  # the old spelling
    assert code == 2 and "not a sweep" in stderr


def test_report_refuses_a_file_that_is_not_a_run_report(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text('{"schema": "compressor.bench/1"}')
    code, _, stderr = _in_process(["report", str(tmp_path / "other.json"), "--out", str(tmp_path / "s")])
    assert code == 2 and "is not a run report (schema 'compressor.bench/1'; expected 'compressor.run/1')" in stderr


def test_second_order_in_a_pipeline_with_finetuning(first_run: tuple[Path, subprocess.CompletedProcess],
                                                    tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    code, _, stderr = _in_process(["run", "-s", "blocks+fishleg", "-p", "blocks=layer4", "--amount", "0.6",
                                   "-p", "gradients=4", "-p", "aux_steps=4", "-p", "refine_steps=2",
                                   "-p", "probe_bank=2", "-p", "heldout_probes=2",
                                   "-p", "recomputations=2", "-p", "calib_samples=100", "--model", str(baseline),
                                   "--quiet", "--finetune-epochs", "1", "--compress", "none", "--backends", "torch",
                                   "--output", str(tmp_path / "r.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "r.json").read_text())
    record = report["steps"][1]["record"]
    assert [s["strategy"] for s in report["steps"]] == ["blocks", "fishleg"]
    assert record["sparsity"] == pytest.approx(0.6, abs=1e-4) and len(record["fishleg"]["fits"]) == 2
    assert report["compressed"]["sparsity"] > 0.55, "fine-tuning keeps the pruned weights at zero"
    assert record["predicted_loss_increase"] > 0 and "measured_loss_increase" in record


def test_structural_steps_recalibrate_batchnorm_and_fine_tune_at_a_fifth_of_the_baseline_lr(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = first_run
    baseline = next((work / "cache" / "baselines").glob("*.pt"))
    common = ["--model", str(baseline), "--quiet", "--compress", "none", "--backends", "torch"]
    code, _, stderr = _in_process(["run", "-s", "channels", "--amount", "0.5", "--finetune-epochs", "0.25", *common,
                                   "--output", str(tmp_path / "auto.json")])
    assert code == 0, stderr
    report = json.loads((tmp_path / "auto.json").read_text())
    assert report["recovery"]["bn_recalibrate"] is True and report["recovery"]["bn_images"] > 0
    trained_lr = load_checkpoint(baseline).history[0]["lr"]
    assert report["recovery"]["finetune"]["lr"] == pytest.approx(0.2 * trained_lr)
    code, _, stderr = _in_process(["run", "-s", "channels", "--amount", "0.5", "--no-bn-recalibrate", *common,
                                   "--output", str(tmp_path / "off.json")])
    assert code == 0, stderr
    assert json.loads((tmp_path / "off.json").read_text())["recovery"]["bn_recalibrate"] is False


def test_a_supcon_linear_classifier_gets_the_frozen_encoder_recovery_recipe(
        first_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    from compressor.models.checkpoint import save_checkpoint
    from compressor.recovery.recipes import RECOVERY_RECIPES

    work, _ = first_run
    trained = load_checkpoint(next((work / "cache" / "baselines").glob("*.pt")))
    trained.history = [{"step": "supcon-linear", "pretrained": "encoder.pt"}]
    save_checkpoint(trained, tmp_path / "supcon.pt")
    common = ["-s", "l1", "--amount", "0.5", "--finetune-epochs", "0.25", "--model", str(tmp_path / "supcon.pt"),
              "--quiet", "--compress", "none", "--backends", "torch"]
    code, _, stderr = _in_process(["run", *common, "--output", str(tmp_path / "auto.json")])
    assert code == 0, stderr
    recovery = json.loads((tmp_path / "auto.json").read_text())["recovery"]
    frozen = RECOVERY_RECIPES["frozen-encoder"]
    assert recovery["recipe"] == "frozen-encoder" and recovery["distill"] is frozen.distill
    assert recovery["finetune"]["freeze_batchnorm"] is frozen.freeze_batchnorm
    assert ("refit_head" in recovery) is frozen.refit_head
    checkpoint = load_checkpoint(tmp_path / "auto.pt")
    assert [entry["step"] for entry in checkpoint.history][-2:] == ["finetune", "refit_head"]
    code, _, stderr = _in_process(["run", *common, "--recovery-recipe", "standard", "--output",
                                   str(tmp_path / "standard.json")])
    assert code == 0, stderr
    recovery = json.loads((tmp_path / "standard.json").read_text())["recovery"]
    assert (recovery["recipe"], recovery["distill"], "refit_head" in recovery) == ("standard", False, False)
