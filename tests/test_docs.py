"""The documentation: every repository path README.md and docs/ name exists, and the MkDocs site builds strictly.

Paths. In README.md and docs/*.md, every path written in code (inline `code` or a fenced block) that starts with
one of the repository's source or result folders (`PREFIXES`) must exist, so that moving or deleting a file a page
names fails the suite. A path is first looked up literally. Two kinds of path describe files instead of naming one,
and each must describe at least one existing file:

- glob patterns (`scripts/grids/recovery-*.toml`) must match a file;
- placeholders, written the way the CLI's usage strings write them: one of the ALL-CAPS words in
  `PLACEHOLDER_WORDS` (`reports/NAME`, `STRATEGY-0.95.json`, `NNNN`; a fixed list, so that a misspelt real name
  such as `READ.md` is not taken for one), an <angle-bracketed> word (`<machine>`) or an ellipsis abridging a long
  name (`0002_a5ae774…json`). Each stands for any text: the path, with each replaced by `*`, must match a file.

A path preceded by `/`, `.`, `~` or `:` is part of another path or URL (`~/.cache/compressor/...`,
`file://reports/...`) and is not a repository path.

Links. README.md's relative Markdown links (to docs/ pages, reports/, scripts/) must point at existing files or
folders. Links between docs pages, and their anchors, are checked by `mkdocs build --strict` (mkdocs.yml sets
`validation: anchors: warn`, which --strict turns into an error), as is a page missing from the nav.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PREFIXES = ("reports", "scripts", "compressor", "supcon", "benchmarks", "examples", "tests")

FENCED = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
REPO_PATH = re.compile(r"(?<![\w./~:$-])((?:%s)/[^\s`'\"|,;()\[\]]*)" % "|".join(PREFIXES))  # noqa: UP031 - a regex full of braces
PLACEHOLDER_WORDS = ("NAME", "DIR", "KEY", "FILE", "PATH", "CKPT", "STRATEGY", "ARCH", "DATASET", "AMOUNT", "SEED",
                     "NNNN")
PLACEHOLDER = re.compile(r"<[^<>/]*>|…|(?<![A-Za-z])(?:%s)(?![A-Za-z])" % "|".join(PLACEHOLDER_WORDS))  # noqa: UP031
GLOB_CHARS = re.compile(r"[*?]")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_texts(markdown: str) -> list[str]:
    """The contents of every fenced block and every inline code span (spans never cross a blank line)."""
    texts = [m.group(2) for m in FENCED.finditer(markdown)]
    prose = FENCED.sub("", markdown)
    for paragraph in re.split(r"\n\s*\n", prose):
        texts.extend(INLINE.findall(paragraph))
    return texts


def repository_paths(markdown: str) -> set[str]:
    found = set()
    for text in code_texts(markdown):
        for path in REPO_PATH.findall(text):
            found.add(path.rstrip(".:"))
    return found


def missing(paths: set[str] | list[str], root: Path = ROOT) -> list[str]:
    """The paths that name no existing file or folder, by the rules in the module docstring."""
    bad = []
    for path in sorted(paths):
        if (root / path).exists():
            continue
        pattern = PLACEHOLDER.sub("*", path)
        if GLOB_CHARS.search(pattern) and glob.glob(str(root / pattern)):
            continue
        bad.append(path)
    return bad


def test_the_path_checker_accepts_patterns_and_placeholders_and_rejects_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "reports" / "bench").mkdir(parents=True)
    (tmp_path / "reports" / "bench" / "README.md").write_text("")
    (tmp_path / "reports" / "bench" / "0002_abc_2026.json").write_text("")
    good = ["reports/bench/README.md", "reports/bench/", "reports/NAME", "reports/bench/*.json",
            "reports/<machine>/NNNN_<commit>_<date>.json", "reports/bench/0002_ab…json"]
    bad = ["reports/gone/README.md", "reports/bench/README.txt", "reports/bench/READ.md", "reports/bench/*.csv",
           "reports/NAME/other.md", "reports/bench/0003_ab…json"]
    assert missing(good, tmp_path) == []
    assert missing(bad, tmp_path) == sorted(bad)


def test_code_paths_are_found_in_inline_code_and_fenced_blocks_only() -> None:
    text = ("See `reports/a/README.md` and `.venv/bin/python scripts/b.py -o reports/c.json`, not reports/d.md\n\n"
            "```bash\nmake -C tests/e\n```\n`~/.cache/compressor/x` and `file://reports/f` are not repository paths.")
    assert repository_paths(text) == {"reports/a/README.md", "scripts/b.py", "reports/c.json", "tests/e"}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_repository_path_a_page_names_exists(page: Path) -> None:
    bad = missing(repository_paths(page.read_text()))
    assert bad == [], f"{page.relative_to(ROOT)} names paths that do not exist (moved or deleted?): {bad}"


def test_the_pages_name_many_repository_paths() -> None:
    """Guards the checker itself: a pattern that silently matched nothing would pass every page."""
    assert len(set().union(*(repository_paths(page.read_text()) for page in PAGES))) > 50


def test_the_readme_links_point_at_existing_files() -> None:
    readme = (ROOT / "README.md").read_text()
    links = [link.split("#")[0] for link in MARKDOWN_LINK.findall(readme)
             if not re.match(r"[a-z]+:|#", link)]
    assert links, "the README links to the docs pages"
    assert [link for link in links if not (ROOT / link).exists()] == []
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= set(links), \
        "the README links to every docs page"


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (it is in the `dev` extra: pip install -e '.[dev]')")
    # no --quiet: it hides the warnings that --strict counts, and a broken anchor would then pass
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def demo_block(readme: str) -> str:
    """The first fenced block of the README that holds the demo's table (it starts with the table's title)."""
    blocks, current = [], None
    for line in readme.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return next(block for block in blocks if block.startswith("l1 on resnet18 / digits"))


def test_the_readme_demo_output_is_the_committed_demo_run() -> None:
    committed = (ROOT / "reports" / "demo" / "output.txt").read_text()

    def lines(text: str) -> list[str]:  # rich pads a wrapped title with spaces; editors strip them
        return [line.rstrip() for line in text.splitlines()]

    assert lines(demo_block((ROOT / "README.md").read_text())) == lines(committed)
    report = json.loads((ROOT / "reports" / "demo" / "resnet18-digits-l1-0.5.json").read_text())
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:4]]
            for line in committed.splitlines() if line.startswith("│")}
    base, comp = report["baseline"], report["compressed"]
    assert rows["top-1 accuracy (deployed model)"] == [f"{100 * base['accuracy']:.2f} %",
                                                       f"{100 * comp['accuracy']:.2f} %"]
    assert rows["deployable file"] == [f"{base['deployable_bytes'] / 1e6:.2f} MB",
                                       f"{comp['deployable_bytes'] / 1e6:.2f} MB"]
    assert rows["latency ONNX Runtime CPU (median)"] == [f"{m['latency']['onnxruntime']['median_ms']:.2f} ms"
                                                         for m in (base, comp)]
