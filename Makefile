# bidsmrs: `make demo` and `make test` set everything up from the project's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bidsmrs-installed
PYTEST_ARGS ?=
# one BLAS thread per test worker: the suite runs two workers on two cores
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test test-fast install clean benchmarks

$(STAMP): pyproject.toml version
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo
	$(BIN)/bidsmrs-demo demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks.challenge

clean:
	rm -rf $(VENV) demo build dist *.egg-info .pytest_cache
