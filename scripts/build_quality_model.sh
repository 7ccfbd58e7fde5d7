#!/usr/bin/env bash
# Rebuild the English quality classifier shipped in src/webmill/assets/quality/ (run from the repository
# root):
#
#   positive: the curated reference samples in data/samples/domains/ (Wikipedia articles, books,
#             StackExchange, arXiv, NIH and USPTO text; non-English documents are skipped by the trainer)
#   negative: every English page of the sample crawl shards (data/samples/warc), extracted and identified
#             but NOT filtered (random web text, as DCLM's negatives), written to output/quality-negatives
#
# Deterministic for a given negative corpus (seed 1, one fastText thread): the same model bytes on every
# run. The extraction time limit is generous (10 s per page) so that load on the machine cannot drop a page.
# Environment: VENV (default .venv). Offline.
set -euo pipefail

VENV=${VENV:-.venv}
BIN=$VENV/bin
OUT=src/webmill/assets/quality
NEGATIVES=output/quality-negatives

mkdir -p output
cat > output/quality-negatives.yaml <<YAML
name: quality-negatives
input: {paths: [data/samples/warc]}
output: {dir: $NEGATIVES}
executor: {kind: local, tasks: 2, workers: 2}
stages:
  - extract: {timeout_s: 10.0}  # generous: a page timed out under load would change the negatives
  - language: {languages: [en], min_score: 0.65}
YAML
"$BIN/webmill" run output/quality-negatives.yaml --overwrite --quiet

"$BIN/webmill" quality train --lang en --seed 1 --out "$OUT" \
    --positive data/samples/domains/*.jsonl.gz \
    --negative "$NEGATIVES/data"
