# webmill: `make demo` and `make test` each set up .venv themselves (once; fast when already done).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SETUP   = $(VENV)/.webmill-setup

.PHONY: setup demo test bench fuzz clean

setup: $(SETUP)

$(SETUP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray,ablation,hub]'
	VENV=$(VENV) bash scripts/build_kenlm.sh
	touch $@

.PHONY: kenlm-tools
kenlm-tools:  # KenLM's lmplz and build_binary into $(BIN), for `webmill kenlm train`
	VENV=$(VENV) bash scripts/build_kenlm.sh

CORPORA = refinedweb fineweb ccnet c4 oscar pile refinedweb-classifier

demo: setup  # the recipes on the shipped samples, their data cards, then a small ablation study
	$(BIN)/webmill run pipelines/refinedweb.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/fineweb.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/ccnet.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/c4.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/oscar.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/pile.yaml --overwrite --quiet
	$(BIN)/webmill run pipelines/refinedweb-classifier.yaml --overwrite --quiet
	for corpus in $(CORPORA); do $(BIN)/webmill card output/$$corpus --out data_cards/$$corpus || exit 1; done
	$(BIN)/webmill ablate pipelines/ablation-demo.yaml --threads 1 --quiet
	@echo "demo corpora: output/{$(shell echo $(CORPORA) | tr ' ' ',')}/data; cards: data_cards/; report: reports/"

test: setup
	$(BIN)/python -m pytest

fuzz: setup  # the reader fuzzer with a long budget (the test suite runs a short one)
	WEBMILL_FUZZ_EXAMPLES=$${WEBMILL_FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz_reader.py

bench: setup  # each script writes bench/results/<name>.json
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/perplexity.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/train.py

clean:
	rm -rf output .pytest_cache
