#!/usr/bin/env bash
# Rebuild the English KenLM model shipped in src/webmill/assets/kenlm/ (run from the repository root):
#
#   1. en.sp.model, en.arpa.bin, en.manifest.json: `webmill kenlm train` on the WikiText-2 validation
#      text in data/samples/text/ (undoing WikiText's tokenisation). Deterministic: the same bytes on
#      every run (the manifest's date and timings aside).
#   2. en.cutoffs.json: the 30th/60th perplexity percentiles of the English pages of the sample crawl
#      shards (data/samples/warc), extracted and identified as in pipelines/ccnet.yaml.
#
# Environment: VENV (default .venv). Offline: nothing is downloaded except KenLM's source when its
# tools are not built yet (scripts/build_kenlm.sh).
set -euo pipefail

VENV=${VENV:-.venv}
BIN=$VENV/bin
OUT=src/webmill/assets/kenlm
CORPUS=output/kenlm-cutoffs

VENV=$VENV bash scripts/build_kenlm.sh
"$BIN/webmill" kenlm train --text data/samples/text/wikitext-2-valid.txt.gz --wikitext --lang en --out "$OUT"

mkdir -p output
cat > output/kenlm-cutoffs.yaml <<YAML
name: kenlm-cutoffs
input: {paths: [data/samples/warc]}
output: {dir: $CORPUS}
executor: {kind: local, tasks: 4, workers: 2}
stages:
  - extract: {timeout_s: 1.0}
  - language: {languages: [en], min_score: 0.5}
YAML
"$BIN/webmill" run output/kenlm-cutoffs.yaml --overwrite --quiet
"$BIN/webmill" kenlm cutoffs --model "$OUT" --lang en --corpus "$CORPUS/data"
