# Two commands for a new user: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip here serves torch 2.14.1 / torchvision 0.29.1 from disk; the constraints keep it from fetching newer ones.
PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt

.PHONY: demo test test-slow bench install clean

$(BIN)/compressor: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

install: $(BIN)/compressor

demo: install
	$(BIN)/compressor run --strategy l1 --amount 0.5

test: install
	$(BIN)/python -m pytest -q
	COMPRESSOR_BENCH_SMOKE=1 $(BIN)/python -m pytest -q benchmarks --benchmark-disable

# Latency suites (pytest-benchmark); results are saved under reports/benchmarks/ for `pytest-benchmark compare`.
bench: install
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-storage=file://reports/benchmarks \
		--benchmark-autosave --benchmark-sort=name --benchmark-columns=min,median,iqr,mean,rounds

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
