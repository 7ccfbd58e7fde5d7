"""Ablation trainer throughput: `webmill.ablation.train.train` against a minimal plain-torch loop.

    python bench/train.py                      # writes bench/results/train.json
    python bench/train.py --steps 10 --repeats 2 --preset cpu-tiny

Both train the same model (the preset, byte vocabulary, same seed: identical starting weights) on the same
batches (WikiText-2 from data/samples/text, packed by `pack_corpus`) for the same number of steps. The plain
loop is what one would write by hand: forward, backward, `torch.optim.AdamW(model.parameters(), lr)`,
zero_grad; no schedule, no clipping, no logging. The trainer does its full work (warm-up + cosine schedule,
clipping, loss recording, progress bar object, fused AdamW with weight-decay groups). tokens/s = trained
tokens / wall time of the whole call (optimizer creation included). The two alternate, `--repeats` times
each (in ABBA order), after one untimed warm-up run of each (first-call costs of torch); medians and their ratio are
reported. The machine may be shared with other work: the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from webmill.ablation.data import pack_corpus  # noqa: E402
from webmill.ablation.model import GPTConfig, build_model  # noqa: E402
from webmill.ablation.tokenizer import ByteTokenizer  # noqa: E402
from webmill.ablation.train import TRAIN_PRESETS, TrainConfig, train  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WIKITEXT = ROOT / "data" / "samples" / "text" / "wikitext-2-valid.txt.gz"


def plain_loop(model, corpus, batch_size: int, steps: int, lr: float) -> float:
    """Seconds for `steps` steps of the simplest correct training loop."""
    began = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step, batch in enumerate(corpus.batches(batch_size)):
        if step == steps:
            break
        _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began


def webmill_trainer(model, corpus, config: TrainConfig) -> tuple[float, list[float]]:
    began = time.perf_counter()
    result = train(model, corpus, config, progress=False)
    return time.perf_counter() - began, [loss for _, _, loss in result.losses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-tiny")
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=6, help="timed runs of each, alternating")
    parser.add_argument("--output", default=str(RESULTS / "train.json"))
    args = parser.parse_args()

    tokenizer = ByteTokenizer()
    model_config = GPTConfig.preset(args.preset, tokenizer.vocab_size)
    settings = TRAIN_PRESETS[args.preset]
    batch, block = settings["batch_size"], model_config.block_size
    tokens = args.steps * batch * block
    with tempfile.TemporaryDirectory() as folder:
        import gzip

        import pyarrow as pa
        import pyarrow.parquet as pq

        text = gzip.open(WIKITEXT, "rt", encoding="utf-8").read()
        articles = [" = " + a.strip() for a in text.split("\n = ") if a.strip()]
        pq.write_table(pa.table({"text": articles}), Path(folder) / "wikitext.parquet")
        corpus = pack_corpus([Path(folder) / "wikitext.parquet"], tokenizer, tokens, block, seed=0)
    config = TrainConfig(**{**settings, "budget_tokens": tokens, "warmup_steps": 2}, device="cpu", seed=0)
    parameters = build_model(model_config, 0).num_parameters()
    print(f"{args.preset}: {parameters:,} parameters, {args.steps} steps × {batch} × {block} = {tokens:,} tokens "
          f"per run, {torch.get_num_threads()} torch threads", flush=True)

    load_before = os.getloadavg()
    plain_s, webmill_s = [], []
    plain_loop(build_model(model_config, 0), corpus, batch, 2, config.lr)  # warm-up, untimed
    webmill_trainer(build_model(model_config, 0), corpus, TrainConfig(**{**config.__dict__,
                                                                         "budget_tokens": 2 * batch * block}))
    for repeat in range(args.repeats):
        # which of the two goes first alternates (ABBA), so that neither always runs in the other's wake
        for first in ((True, False) if repeat % 2 == 0 else (False, True)):
            if first:
                plain_s.append(plain_loop(build_model(model_config, 0), corpus, batch, args.steps, config.lr))
            else:
                seconds, losses = webmill_trainer(build_model(model_config, 0), corpus, config)
                webmill_s.append(seconds)
        print(f"repeat {repeat + 1}: plain {tokens / plain_s[-1]:,.0f} tok/s, webmill {tokens / seconds:,.0f} tok/s "
              f"(loss {losses[0]:.3f} → {losses[-1]:.3f})", flush=True)
    load_after = os.getloadavg()

    plain_tps = [tokens / s for s in plain_s]
    webmill_tps = [tokens / s for s in webmill_s]
    ratio = statistics.median(webmill_tps) / statistics.median(plain_tps)
    default_budget = settings["budget_tokens"]
    results = {
        "what": "tokens/s of webmill.ablation.train.train vs a minimal plain-torch loop (same model, batches, steps)",
        "preset": args.preset, "parameters": parameters, "steps_per_run": args.steps, "batch_size": batch,
        "block_size": block, "tokens_per_run": tokens, "repeats": args.repeats,
        "plain_tokens_per_s": [round(v, 1) for v in plain_tps],
        "webmill_tokens_per_s": [round(v, 1) for v in webmill_tps],
        "plain_tokens_per_s_median": round(statistics.median(plain_tps), 1),
        "webmill_tokens_per_s_median": round(statistics.median(webmill_tps), 1),
        "ratio_webmill_over_plain": round(ratio, 3),
        "default_budget_tokens": default_budget,
        "default_budget_minutes_at_median": round(default_budget / statistics.median(webmill_tps) / 60, 1),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in load_after]},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"median: plain {results['plain_tokens_per_s_median']:,} tok/s, webmill "
          f"{results['webmill_tokens_per_s_median']:,} tok/s, ratio {ratio:.2f}× → {args.output}")


if __name__ == "__main__":
    main()
