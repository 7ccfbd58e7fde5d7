# webmill: `make demo` and `make test` each set up .venv themselves (once; fast when already done).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SETUP   = $(VENV)/.webmill-setup

.PHONY: setup demo test bench clean

setup: $(SETUP)

$(SETUP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BIN)/webmill run pipelines/refinedweb.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/fineweb.yaml --overwrite --quiet
	@echo "demo corpora: output/refinedweb/data and output/fineweb/data (accounting: output/*/stats.json)"

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf output .pytest_cache
