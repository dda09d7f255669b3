# Two commands for a new user: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip here serves torch 2.14.1 / torchvision 0.29.1 from disk; the constraints keep it from fetching newer ones.
PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt

.PHONY: demo test test-slow bench bench-compare docs docs-serve install clean

$(BIN)/compressor: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

install: $(BIN)/compressor

demo: install
	$(BIN)/compressor run --strategy l1 --amount 0.5

# `pytest -q` includes tests/test_docs.py, which builds the docs with `mkdocs build --strict` (a broken link or
# anchor fails) and checks that every repository path the README and docs/ name exists.
# `ruff check` (configured in pyproject.toml) lints first. All three always run (a lint error or a failing test must
# not hide a broken benchmark); make fails when any failed.
test: install
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/python -m pytest -q || status=1; \
	$(BIN)/python -m pytest -q benchmarks --bench-smoke --benchmark-disable || status=1; \
	exit $$status

# The documentation site (mkdocs.yml, pages in docs/): `docs` builds it strictly into site/, `docs-serve` previews it.
docs: install
	$(BIN)/mkdocs build --strict

docs-serve: install
	$(BIN)/mkdocs serve

# Latency suites (pytest-benchmark). Options of the suites go in BENCH_ARGS, e.g.
#   make bench BENCH_ARGS="--bench-sizes 32 --bench-archs resnet18,densenet201 --bench-threads 1"
# (`.venv/bin/python -m pytest benchmarks --help`, under "options of the latency suites", lists them).
# `bench` saves each run as reports/benchmarks/<machine>/NNNN_<commit>_<date>.json (pytest-benchmark's layout);
# `bench-compare` runs the suites again without saving and fails when a median is more than 10 % slower than in
# the latest saved run of this machine (benchmarks absent from that run are not compared).
BENCH_PATHS ?= benchmarks
BENCH_STORAGE ?= file://reports/benchmarks
BENCH_ARGS ?=
BENCH_FLAGS = --benchmark-only --benchmark-storage=$(BENCH_STORAGE) --benchmark-sort=name \
	--benchmark-columns=min,median,iqr,mean,rounds

bench: install
	$(BIN)/python -m pytest $(BENCH_PATHS) $(BENCH_FLAGS) --benchmark-autosave $(BENCH_ARGS)

bench-compare: install
	$(BIN)/python -m pytest $(BENCH_PATHS) $(BENCH_FLAGS) --benchmark-compare --benchmark-compare-fail=median:10% \
		$(BENCH_ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs site .pytest_cache
