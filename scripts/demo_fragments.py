"""The fragments of reports/demo/ (`make demo`'s committed run) that README.md embeds and docs/index.md includes:
where it ran, and what its report says beyond the printed table, rendered from the report JSON so no figure of it is
copied by hand.

    .venv/bin/python scripts/demo_fragments.py [reports/demo]

scripts/demo-report.sh writes them after the run; tests/reports/test_fragments.py compares them with the committed
files. `machine.md`: the machine and threads of the run; `facts.md`: sparsity against the amount, the strategy's own
record, and the ONNX export's accuracy against torch's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from compressor.report.numbers import percent

REPORT = "resnet18-digits-l1-0.5.json"


def render_fragments(root: Path) -> dict[str, str]:
    """The demo report's fragments, by file name."""
    import json

    run = json.loads((root / REPORT).read_text())
    env, comp = run["environment"], run["compressed"]
    cpu = " ".join(env["cpu"].replace("(R)", "").replace("(TM)", "").replace("Processor", "").split())
    machine = (f"Real output on this project's {env['cpu_count']}-core machine ({cpu}, torch "
               f"{env['packages']['torch']}, {env['torch_threads']} threads, empty cache, nothing else running; "
               "`scripts/demo-report.sh` reruns it into `reports/demo/`, where the report, this output and process "
               f"samples are committed); its baseline reached {percent(run['baseline']['accuracy'])} % test top-1:\n")
    ort, torch = comp["evaluation"]["onnxruntime"], comp["evaluation"]["torch"]
    same = "the same" if ort["accuracy"] == torch["accuracy"] == comp["accuracy"] else "a different"
    diff = f"{ort['max_abs_logit_diff_vs_torch']:.1e}".replace("e-0", "e-")
    facts = (f"In the committed report (`reports/demo/{REPORT}`) the conv/linear sparsity is "
             f"{percent(comp['sparsity'])} % rather than {100 * run['params']['l1']['amount']:g} % because the stem "
             "convolution and the classifier stay dense by default, while the strategy's own record "
             f"(`steps[0].record.sparsity`) shows exactly {run['steps'][0]['record']['sparsity']:g} of the weights it "
             f"was allowed to touch; and the ONNX export of the compressed model scores {same} "
             f"{percent(ort['accuracy'])} % under ONNX Runtime as under torch (largest logit difference to torch "
             f"{diff}, `compressed.evaluation.onnxruntime`).\n")
    return {"machine.md": machine, "facts.md": facts}


def main() -> None:
    from compressor.report.fragments import write_texts

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/demo")
    for path in write_texts(root, render_fragments(root)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
