"""Evaluation of ablation models: shipped eval sets, bits per byte, tie-aware choice scoring."""

from __future__ import annotations

import gzip
import json
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import SAMPLES
from webmill import evalsets
from webmill.ablation.evaluate import (EvalSuiteConfig, bits_per_byte, evaluate_model, score_choices,
                                       score_continuations, text_logprobs)
from webmill.ablation.model import GPT, GPTConfig
from webmill.ablation.tokenizer import ByteTokenizer, train_bpe
from webmill.errors import WebmillError
from webmill.evalsets import ChoiceItem, ContinuationItem

torch.set_num_threads(1)
BYTES = ByteTokenizer()


class FixedLogits(torch.nn.Module):
    """Outputs the same logits at every position, whatever the input: a distribution we choose."""

    def __init__(self, logits: torch.Tensor, block_size: int = 32):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.float(), requires_grad=False)
        self.config = SimpleNamespace(block_size=block_size)

    def forward(self, idx, targets=None):
        return self.logits.expand(*idx.shape, -1), None


class Bigram(torch.nn.Module):
    """Logits depend on the current input token only, so a token's score does not depend on its window."""

    def __init__(self, vocab: int, block_size: int):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)
        self.config = SimpleNamespace(block_size=block_size)

    def forward(self, idx, targets=None):
        return self.table(idx), None


def uniform(vocab: int = 257, block_size: int = 32) -> FixedLogits:
    return FixedLogits(torch.zeros(vocab), block_size)


# ------------------------------------------------------------------ shipped eval sets

def test_eval_sets_have_the_documented_sizes():
    domains = evalsets.heldout_domains()
    assert {d: len(docs) for d, docs in domains.items()} == {
        "wikipedia": 62, "books": 28, "web": 10, "science": 110, "qa": 33}
    for docs in domains.values():
        assert all(doc.strip() for doc in docs) and len(set(docs)) == len(docs)
    assert "<unk>" not in "".join(domains["wikipedia"]) and " @-@ " not in "".join(domains["wikipedia"])

    tasks = evalsets.choice_tasks()
    sizes = {t: len(items) for t, items in tasks.items()}
    assert {t: sizes[t] for t in ("piqa", "arc_easy", "copa", "winogrande")} == {
        "piqa": 500, "arc_easy": 500, "copa": 100, "winogrande": 500}
    blimp = [t for t in tasks if t.startswith("blimp_")]
    assert len(blimp) == 10 and all(sizes[t] == 200 for t in blimp)
    for items in tasks.values():
        assert all(len(i.choices) >= 2 and 0 <= i.gold < len(i.choices) for i in items)
    assert all(i.suffix for i in tasks["winogrande"]) and all(i.context == "" for t in blimp for i in tasks[t])
    lambada = evalsets.continuation_tasks()["lambada"]
    assert len(lambada) == 500 and all(i.target.startswith(" ") and i.target.strip() for i in lambada)

    names = {name for name, _ in evalsets.iter_eval_texts()}
    assert names == {f"heldout_{d}" for d in domains} | set(tasks) | {"lambada"}


def test_no_heldout_document_is_a_training_sample():
    folder = SAMPLES / "domains"
    files = sorted(folder.glob("*.jsonl.gz"))
    if not files:
        pytest.skip("data/samples/domains/ holds no samples")
    samples = [json.loads(line)["text"] for path in files for line in gzip.open(path, "rt", encoding="utf-8")]
    assert samples
    blob = "\n".join(samples)
    normalised = {" ".join(s.split()) for s in samples}
    long_lines = 0
    for domain, docs in evalsets.heldout_domains().items():
        for doc in docs:
            assert " ".join(doc.split()) not in normalised, f"a held-out {domain} document is a training sample"
            for line in doc.split("\n"):
                if len(line) > 80:  # long lines are unique to their document in these sources
                    long_lines += 1
                    assert line not in blob, f"held-out {domain} text in data/samples/domains: {line[:60]!r}"
    assert long_lines > 1000


def test_unknown_names_are_errors_that_list_the_valid_ones():
    with pytest.raises(WebmillError, match="unknown held-out domain 'news'.*wikipedia, books, web"):
        evaluate_model(uniform(), BYTES, EvalSuiteConfig(domains=["news"], tasks=[]))
    with pytest.raises(WebmillError, match="unknown evaluation task 'hellaswag'.*piqa"):
        evaluate_model(uniform(), BYTES, EvalSuiteConfig(domains=[], tasks=["hellaswag"]))
    with pytest.raises(WebmillError, match="max_items_per_task"):
        EvalSuiteConfig(max_items_per_task=0)
    assert len(evalsets.resolve_tasks(["blimp"])) == 10


# ------------------------------------------------------------------ bits per byte

def test_uniform_model_scores_log2_vocab_per_token_exactly():
    texts = ["Ünïcödé text — with multi-byte characters. " * 9, "short", "x" * 200]
    tokens, n_bytes = sum(len(BYTES.encode(t)) for t in texts), sum(len(t.encode()) for t in texts)
    for stride in (None, 7, 1):  # several windows per document, each token scored once
        assert bits_per_byte(uniform(), BYTES, texts, stride=stride) == pytest.approx(
            math.log2(257) * tokens / n_bytes, rel=1e-6)

    bpe = train_bpe(evalsets.heldout_domains()["books"][:10], vocab_size=400, seed=0)
    tokens = sum(len(bpe.encode(t)) for t in texts)
    assert tokens < n_bytes  # a real subword tokenisation: fewer tokens than bytes
    assert bits_per_byte(uniform(bpe.vocab_size), bpe, texts) == pytest.approx(
        math.log2(bpe.vocab_size) * tokens / n_bytes, rel=1e-6)


def test_windows_score_every_token_exactly_once_whatever_the_stride():
    torch.manual_seed(0)
    model = Bigram(257, block_size=16)
    text = evalsets.heldout_domains()["books"][0][:300]
    ids = [BYTES.eos_id, *BYTES.encode(text)]
    with torch.no_grad():
        logprobs = torch.log_softmax(model.table.weight, dim=-1)
    expected = sum(logprobs[a, b].item() for a, b in zip(ids, ids[1:]))
    for stride in (None, 16, 5, 1):
        (score,) = text_logprobs(model, BYTES, [text], stride=stride)
        assert score.tokens == len(ids) - 1
        assert score.logprob == pytest.approx(expected, rel=1e-5)


def test_bits_per_byte_falls_when_a_model_learns():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=257, block_size=64, n_layer=2, n_head=2, n_embd=64))
    heldout = [doc[:400] for doc in evalsets.heldout_domains()["books"][:4]]
    before = bits_per_byte(model, BYTES, heldout)
    train_text = "\n\n".join(evalsets.heldout_domains()["books"][10:20])  # other Shakespeare than the scored
    data = torch.tensor([BYTES.eos_id, *BYTES.encode(train_text)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(40):
        starts = torch.randint(0, len(data) - 65, (8,), generator=generator)
        batch = torch.stack([data[s:s + 65] for s in starts])
        _, loss = model(batch[:, :-1], batch[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = bits_per_byte(model, BYTES, heldout)
    assert model.training  # evaluation put the model back in the mode it found it in
    assert before > 7.5 and after < before - 2.0, (before, after)


# ------------------------------------------------------------------ choices: tie-aware accuracy, margin

def test_ties_count_one_over_k_in_tie_aware_accuracy_and_wrong_in_strict():
    items = [
        ChoiceItem("Q:", [" ab", " cd"], 0),          # 2-way tie containing gold: 1/2
        ChoiceItem("Q:", [" ab", " cd", " efg"], 1),  # gold in a 2-way tie, the longer choice is worse: 1/2
        ChoiceItem("Q:", [" ab", " cd", " efg"], 2),  # gold is the worst: 0
        ChoiceItem("", ["a", "b", "c", "d"], 3),      # 4-way tie: 1/4
    ]
    result = score_choices(uniform(), BYTES, items)
    assert result["accuracy"] == 0.0
    assert result["accuracy_tie_aware"] == pytest.approx((0.5 + 0.5 + 0 + 0.25) / 4)
    assert result["n"] == 4
    p_short = 1 / (2 + 1 / 257)  # softmax over log-likelihoods -3·log 257, -3·log 257, -4·log 257
    assert result["margin"] == pytest.approx((0 + 0 + (p_short / 257 - p_short) + 0) / 4, abs=1e-6)


def test_clear_preference_scores_strictly_with_the_softmax_margin():
    logits = torch.zeros(257)
    logits[ord("a")] = 2.0  # the model prefers the byte "a"
    model = FixedLogits(logits)
    log_a, log_b = 2.0 - math.log(math.exp(2.0) + 256), -math.log(math.exp(2.0) + 256)
    p_aa = 1 / (1 + math.exp(2 * log_b - 2 * log_a))  # softmax over the two choices' log-likelihoods
    right = score_choices(model, BYTES, [ChoiceItem("", ["aa", "bb"], 0)])
    assert right["accuracy"] == right["accuracy_tie_aware"] == 1.0
    assert right["margin"] == pytest.approx(2 * p_aa - 1, rel=1e-6)
    both = score_choices(model, BYTES, [ChoiceItem("", ["aa", "bb"], 0), ChoiceItem("", ["aa", "bb"], 1)])
    assert both["accuracy"] == both["accuracy_tie_aware"] == 0.5
    # summed, the short unlikely "b" beats ten likely "a"; per byte the "a"s win
    per_byte = score_choices(model, BYTES, [ChoiceItem("", ["aaaaaaaaaa", "b"], 0)])
    assert per_byte["accuracy"] == 0.0 and per_byte["accuracy_norm"] == 1.0


def test_winogrande_style_items_score_the_shared_suffix_after_each_option():
    torch.manual_seed(1)
    model = Bigram(257, block_size=32)
    with torch.no_grad():
        logprobs = torch.log_softmax(model.table.weight, dim=-1)
    suffix = " ran."
    ids = BYTES.encode(suffix)
    # the suffix's score depends on the option only through the option's last byte
    score = {c: logprobs[ord(c), ids[0]].item() + sum(logprobs[a, b].item() for a, b in zip(ids, ids[1:]))
             for c in "xy"}
    gold = 0 if score["x"] > score["y"] else 1
    result = score_choices(model, BYTES, [ChoiceItem("The ", ["x", "y"], gold, suffix=suffix)])
    assert result["accuracy"] == 1.0


def test_lambada_greedy_accuracy_and_ties():
    logits = torch.zeros(257)
    logits[ord("a")] = 1.0
    model = FixedLogits(logits)
    result = score_continuations(model, BYTES, [ContinuationItem("x", " a"), ContinuationItem("x", "aa"),
                                                ContinuationItem("x", "ab")])
    assert result["accuracy"] == pytest.approx(1 / 3)  # " " is not the argmax; "aa" is greedy; "ab" is not
    tie = score_continuations(uniform(), BYTES, [ContinuationItem("x", "q")])
    assert tie["accuracy"] == 0.0 and tie["accuracy_tie_aware"] == pytest.approx(1 / 257)
    assert tie["margin"] == pytest.approx(0.0, abs=1e-7)
    assert tie["loglik"] == pytest.approx(-math.log(257), rel=1e-6)


def test_evaluate_model_returns_the_contract_shape():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=257, block_size=64, n_layer=1, n_head=2, n_embd=32))
    suite = EvalSuiteConfig(domains=["books", "qa"], tasks=["copa", "blimp_anaphor_number_agreement", "lambada"],
                            max_docs_per_domain=2, max_items_per_task=6, max_bytes_per_doc=300)
    result = evaluate_model(model, BYTES, suite)
    assert set(result["bpb"]) == {"books", "qa", "macro"}
    assert result["bpb"]["macro"] == pytest.approx((result["bpb"]["books"] + result["bpb"]["qa"]) / 2)
    assert all(7.0 < v < 9.5 for v in result["bpb"].values())  # an untrained model: near log2(257) = 8.0
    assert set(result["tasks"]) == {"copa", "blimp_anaphor_number_agreement", "lambada"}
    for scores in result["tasks"].values():
        assert scores["n"] == 6 and 0 <= scores["accuracy"] <= scores["accuracy_tie_aware"] <= 1
        assert -1 <= scores["margin"] <= 1
