# qianmian — the two commands of the quick start are `make demo` and `make test`.
# The virtual environment is (re)installed only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,postgres,redis,spark,models,service
WORKSPACE ?= qianmian-workspace

.PHONY: demo test test-unit bench lint typecheck docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qianmian --workspace $(WORKSPACE) demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not slow"

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/qianmian schema --format markdown > docs/data-dictionary.md
	$(BIN)/qianmian features list --markdown > docs/features.md

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .ruff_cache .mypy_cache
