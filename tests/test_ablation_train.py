"""The ablation trainer on real English text (WikiText-2, shipped): learning, seeds, resuming, DFA, errors."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from webmill.ablation.data import pack_corpus
from webmill.ablation.model import GPTConfig, build_model
from webmill.ablation.tokenizer import ByteTokenizer
from webmill.ablation.train import CHECKPOINT, TrainConfig, _learning_rate, train
from webmill.errors import WebmillError

from conftest import write_text_parquet

TINY = dict(vocab_size=257, block_size=64, n_layer=2, n_head=4, n_embd=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def english(articles, tmp_path_factory) -> Path:
    return write_text_parquet(tmp_path_factory.mktemp("english") / "train.parquet", articles[:-10], row_group_size=50)


def config(corpus, **changes) -> TrainConfig:
    settings = dict(budget_tokens=corpus.budget_tokens, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2,
                    device="cpu", seed=0)
    return TrainConfig(**{**settings, **changes})


def losses(result) -> list[float]:
    return [loss for _, _, loss in result.losses]


def test_same_seed_same_run_other_seed_other_run(english):
    corpus = pack_corpus([english], ByteTokenizer(), 10 * 8 * 64, 64, seed=0)
    runs = [train(build_model(GPTConfig(**TINY, dropout=0.1), seed), corpus, config(corpus, seed=seed),
                  progress=False) for seed in (1, 1, 2)]
    assert losses(runs[0]) == losses(runs[1])
    assert losses(runs[0]) != losses(runs[2])
    assert [(s, t) for s, t, _ in runs[0].losses] == [(i, i * 8 * 64) for i in range(1, 11)]
    assert runs[0].steps == 10 and runs[0].tokens == 10 * 8 * 64 and runs[0].tokens_per_s > 0
    # packing is seeded too
    assert not (pack_corpus([english], ByteTokenizer(), 640, 64, seed=1).tokens == corpus.tokens[:641]).all()


def test_interrupted_run_resumes_to_the_same_weights(english, tmp_path):
    corpus = pack_corpus([english], ByteTokenizer(), 12 * 8 * 64, 64, seed=0)
    model_config = GPTConfig(**TINY, dropout=0.1)  # dropout: the random state must be restored as well
    whole = build_model(model_config, seed=0)
    uninterrupted = train(whole, corpus, config(corpus), out_dir=tmp_path / "whole", progress=False)

    class Interrupt(Exception):
        pass

    calls = []

    def fails_at_step_10(model):  # evaluation at step 5 succeeds, then its checkpoint is written
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt
        return {"ok": 1.0}

    settings = config(corpus, checkpoint_every=5, eval_every=5)
    first = build_model(model_config, seed=0)
    with pytest.raises(Interrupt):
        train(first, corpus, settings, out_dir=tmp_path / "cut", eval_fn=fails_at_step_10, progress=False)
    assert torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=False)["step"] == 5

    resumed_model = build_model(model_config, seed=99)  # any starting weights: the checkpoint replaces them
    resumed = train(resumed_model, corpus, settings, out_dir=tmp_path / "cut", eval_fn=lambda m: {"ok": 2.0},
                    progress=False)
    assert resumed.resumed_at == 5
    assert losses(resumed) == losses(uninterrupted)
    assert resumed.evals == [(5, {"ok": 1.0}), (10, {"ok": 2.0}), (12, {"ok": 2.0})]
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name

    # a finished run is not trained again; another run's settings are refused
    again = train(build_model(model_config, 0), corpus, settings, out_dir=tmp_path / "cut", progress=False)
    assert again.resumed_at == 12 and losses(again) == losses(uninterrupted)
    with pytest.raises(WebmillError, match="seed=0, not 1"):
        train(build_model(model_config, 0), corpus, config(corpus, seed=1), out_dir=tmp_path / "cut", progress=False)
    other_corpus = pack_corpus([english], ByteTokenizer(), 12 * 8 * 64, 64, seed=1)
    with pytest.raises(WebmillError, match="another corpus"):
        train(build_model(model_config, 0), other_corpus, settings, out_dir=tmp_path / "cut", progress=False)


def test_eval_fn_runs_periodically_in_eval_mode(english):
    corpus = pack_corpus([english], ByteTokenizer(), 7 * 8 * 64, 64, seed=0)
    modes = []

    def eval_fn(model):
        modes.append(model.training)
        assert not torch.is_grad_enabled()
        return {"steps_seen": float(len(modes))}

    result = train(build_model(GPTConfig(**TINY), 0), corpus, config(corpus, eval_every=3), eval_fn=eval_fn,
                   progress=False)
    assert [step for step, _ in result.evals] == [3, 6, 7] and modes == [False] * 3
    assert result.evals[-1][1] == {"steps_seen": 3.0}


def test_dfa_trains_without_backpropagation_between_blocks(english):
    """EXPERIMENTAL trainer: the loss still falls, and the blocks learn something other than backprop's update."""
    corpus = pack_corpus([english], ByteTokenizer(), 30 * 8 * 64, 64, seed=0)
    dfa_model = build_model(GPTConfig(**TINY), 0)
    dfa = losses(train(dfa_model, corpus, config(corpus, trainer="dfa"), progress=False))
    assert dfa[0] == pytest.approx(math.log(257), abs=0.1)
    assert sum(dfa[-5:]) / 5 < dfa[0] - 1.0
    assert all(math.isfinite(loss) for loss in dfa)
    backprop_model = build_model(GPTConfig(**TINY), 0)
    train(backprop_model, corpus, config(corpus), progress=False)
    initial = build_model(GPTConfig(**TINY), 0)
    for name, _ in initial.blocks.named_parameters():
        start = initial.blocks.get_parameter(name)
        moved = dfa_model.blocks.get_parameter(name)
        assert not torch.equal(start, moved), f"DFA left {name} untouched"
        assert not torch.allclose(moved, backprop_model.blocks.get_parameter(name)), name


def held_out_bpb(model, tokenizer, texts: list[str]) -> float:
    """Bits per byte of `texts` (each as its own windows of the model's block size)."""
    nats, n_bytes = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor(tokenizer.encode(text))
            for start in range(0, len(ids) - 1, 64):
                window = ids[start:start + 65]
                logits, _ = model(window[None, :-1])
                nats += F.cross_entropy(logits[0], window[1:], reduction="sum").item()
                n_bytes += len(window) - 1  # byte tokens: one byte each
    return nats / math.log(2) / n_bytes


def test_english_beats_random_characters_and_shuffled_words(articles, tmp_path):
    """The pipeline learns structure: trained and scored on its own kind of text, a model gets the lowest
    bits per byte on real English, higher on the same words shuffled, far higher on random characters."""
    rng = random.Random(0)
    alphabet = sorted(c for c in set("".join(articles)) if c.isascii())  # one byte each
    words = " ".join(articles).split(" ")
    rng.shuffle(words)
    shuffled, start = [], 0
    for article in articles:
        n = article.count(" ") + 1
        shuffled.append(" ".join(words[start:start + n]))
        start += n
    kinds = {
        "english": articles,
        "shuffled_words": shuffled,
        "random_chars": ["".join(rng.choice(alphabet) for _ in range(len(a))) for a in articles[-14:]],
    }
    tokenizer = ByteTokenizer()
    bpb = {}
    for kind, texts in kinds.items():
        train_texts, held_out = texts[:-4], [t[:2000] for t in texts[-4:]]
        corpus = pack_corpus([write_text_parquet(tmp_path / f"{kind}.parquet", train_texts, row_group_size=50)], tokenizer,
                             100 * 16 * 64, 64, seed=0)
        model = build_model(GPTConfig(**{**TINY, "n_embd": 64}), 0)
        train(model, corpus, config(corpus, batch_size=16, warmup_steps=5), progress=False)
        bpb[kind] = held_out_bpb(model, tokenizer, held_out)
    assert bpb["english"] < bpb["shuffled_words"] < bpb["random_chars"], bpb
    assert bpb["random_chars"] > math.log2(len(alphabet)) - 0.5  # no structure to learn there
    assert bpb["english"] < 4.4, bpb  # below what byte frequencies alone give (~4.5 bits)


def test_learning_rate_warms_up_then_decays_to_min_lr():
    settings = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10)
    rates = [_learning_rate(step, 100, settings) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))


@pytest.mark.parametrize("change, message", [
    (dict(trainer="hebbian"), "backprop or dfa"),
    (dict(device="tpu"), "cpu, cuda or auto"),
    (dict(lr=1e-3, min_lr=1e-2), "min_lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(eval_every=-1), "eval_every"),
])
def test_bad_training_config_is_a_clear_error(english, change, message):
    corpus = pack_corpus([english], ByteTokenizer(), 640, 64, seed=0)
    with pytest.raises(WebmillError, match=message):
        train(build_model(GPTConfig(**TINY), 0), corpus, config(corpus, **change), progress=False)


def test_budget_and_block_mismatches_are_clear_errors(english):
    corpus = pack_corpus([english], ByteTokenizer(), 640, 64, seed=0)
    with pytest.raises(WebmillError, match="exceeds the 640 tokens"):
        train(build_model(GPTConfig(**TINY), 0), corpus, config(corpus, budget_tokens=6400), progress=False)
    with pytest.raises(WebmillError, match="less than one step"):
        train(build_model(GPTConfig(**TINY), 0), corpus, config(corpus, batch_size=64), progress=False)
    with pytest.raises(WebmillError, match="longer than the model's block_size 32"):
        train(build_model(GPTConfig(**{**TINY, "block_size": 32}), 0), corpus, config(corpus), progress=False)
