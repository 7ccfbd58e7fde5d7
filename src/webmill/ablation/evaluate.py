"""Score a trained model: bits per byte on held-out text and likelihood-scored zero-shot tasks.

Every score comes from one primitive: the log-probability of target tokens given everything before them,
with the tokenizer's EOS as the first token of every sequence (the model saw EOS before each document in
training). A sequence longer than the model's window is scored in windows of `block_size` tokens that
advance by `stride` tokens (default: `block_size`, i.e. consecutive chunks); every scored token is
predicted from at least `block_size - stride + 1` preceding tokens (or all of them, when fewer precede it),
and every token is scored exactly once.

- bits per byte: -sum(log2 p) over all tokens of the documents / UTF-8 bytes of the documents. No end
  token is scored, so a model that spreads probability evenly over V ids scores log2(V) × tokens / bytes.
- multiple choice: each choice's summed log-likelihood after the context. `accuracy` counts an item only
  when gold is the single best choice; `accuracy_tie_aware` gives 1/k when gold is one of k choices tied
  for best; `accuracy_norm` ranks by log-likelihood per UTF-8 byte of the scored text; `margin` is the mean
  of p(gold) - max p(other), the probabilities being the softmax over the choices' log-likelihoods.
- continuation (LAMBADA): `accuracy` = the greedy (argmax) decode reproduces every target token, i.e.
  the gold token is the single most likely one at each step; `accuracy_tie_aware` multiplies 1/k per step
  where gold ties with k-1 others for the maximum (0 when it is below); `margin` = the mean over items of
  the smallest per-step p(gold) - max p(other) (positive exactly when the greedy decode matches);
  `loglik` = mean log-likelihood of the target in nats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from webmill import evalsets
from webmill.errors import WebmillError

# Scores within this distance count as tied: per token, log-probabilities (float32); per choice, the summed
# log-likelihood relative to its size (float32 sums of many terms are not bit-reproducible across batches).
TOKEN_TIE_TOLERANCE = 1e-6
CHOICE_TIE_TOLERANCE = 1e-6


@dataclass
class EvalSuiteConfig:
    """What `evaluate_model` scores. None means every shipped domain / task; `blimp` names every BLiMP
    paradigm. Documents and items are the first N in the shipped order; documents are cut to their first
    `max_bytes_per_doc` bytes (at a character boundary)."""

    domains: list[str] | None = None
    tasks: list[str] | None = None
    max_docs_per_domain: int = 16
    max_items_per_task: int = 200
    max_bytes_per_doc: int = 4096
    stride: int | None = None  # tokens a scoring window advances by; None: block_size (no overlap)
    batch_size: int = 16  # windows per forward pass

    def __post_init__(self):
        for key in ("max_docs_per_domain", "max_items_per_task", "max_bytes_per_doc", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WebmillError(f"evaluation {key} {value!r}: must be a positive whole number")


@dataclass
class TargetScore:
    """Scores of one target text after its prefix."""

    logprob: float  # sum of natural-log probabilities of the target tokens
    tokens: int
    greedy: bool  # every target token is the single argmax of its distribution
    greedy_tie_aware: float  # product over tokens of 1/k when gold ties with k ids for the max, else 0
    margin: float  # min over tokens of p(gold) - max p(other id)


def resolve_device(device: str | None, model: torch.nn.Module) -> torch.device:
    """None: wherever the model is; "auto": CUDA when present; else the named device (scoring moves the
    model there)."""
    if device is None:
        return next(model.parameters()).device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _Scorer:
    """Runs the model over scoring windows in batches and collects per-token statistics."""

    def __init__(self, model: torch.nn.Module, device: str | None, stride: int | None, batch_size: int):
        config = getattr(model, "config", None)
        self.block_size = getattr(config, "block_size", None)
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise WebmillError("model has no config.block_size: cannot choose scoring windows")
        self.stride = self.block_size if stride is None else stride
        if not 1 <= self.stride <= self.block_size:
            raise WebmillError(f"scoring stride {self.stride}: must be between 1 and block_size {self.block_size}")
        self.model, self.batch_size = model, batch_size
        self.device = resolve_device(device, model)
        model.to(self.device)  # a no-op when the model is already there (the default)

    def windows(self, seq: list[int], start: int) -> list[tuple[list[int], int]]:
        """(window tokens, index of the first scored target) covering positions start..len(seq)-1 once.
        A window of n+1 tokens feeds tokens [:-1] and predicts tokens [1:]."""
        last = len(seq) - 1
        out = []
        previous, end = start - 1, min(last, max(self.block_size, start - 1 + self.stride))
        while previous < last:
            first_input = max(0, end - self.block_size)
            out.append((seq[first_input:end + 1], previous - first_input))
            previous, end = end, min(last, end + self.stride)
        return out

    @torch.no_grad()
    def score(self, sequences: Sequence[tuple[list[int], int]]) -> list[TargetScore]:
        """For each (tokens, start): the target tokens[start:] scored given everything before them."""
        windows = [(owner, tokens, first) for owner, (seq, start) in enumerate(sequences)
                   for tokens, first in self.windows(seq, start)]
        # per sequence: [logprob, tokens, greedy, tie-aware greedy, margin]
        totals = [[0.0, 0, True, 1.0, math.inf] for _ in sequences]
        windows.sort(key=lambda w: -len(w[1]))  # similar lengths together: less padding
        was_training = self.model.training
        self.model.eval()
        try:
            for at in range(0, len(windows), self.batch_size):
                self._score_batch(windows[at:at + self.batch_size], totals)
        finally:
            self.model.train(was_training)
        return [TargetScore(lp, n, g and n > 0, gt if n else 0.0, m if n else 0.0) for lp, n, g, gt, m in totals]

    def _score_batch(self, batch, totals) -> None:
        width = max(len(tokens) for _, tokens, _ in batch) - 1
        inputs = torch.zeros((len(batch), width + 1), dtype=torch.long)
        for row, (_, tokens, _) in enumerate(batch):  # right padding: a causal model never looks at it
            inputs[row, :len(tokens)] = torch.tensor(tokens)
        inputs = inputs.to(self.device)
        logits, _ = self.model(inputs[:, :-1])
        logprobs = torch.log_softmax(logits.float(), dim=-1)  # [B, W, V]
        targets = inputs[:, 1:].unsqueeze(-1)
        # per position, on the device; only these [B, W] statistics travel back
        gold = logprobs.gather(-1, targets).squeeze(-1)
        best = logprobs.max(dim=-1).values
        tied = (logprobs >= (best - TOKEN_TIE_TOLERANCE).unsqueeze(-1)).sum(dim=-1)
        gold_best = gold >= best - TOKEN_TIE_TOLERANCE
        others = logprobs.scatter(-1, targets, -math.inf).max(dim=-1).values
        margin = gold.exp() - others.exp()
        single = gold_best & (tied == 1)
        credit = torch.where(gold_best, 1.0 / tied.double(), 0.0)
        gold, single, credit, margin = (t.cpu() for t in (gold.double(), single, credit, margin))
        for row, (owner, tokens, first) in enumerate(batch):
            span = slice(first, len(tokens) - 1)  # the scored targets of this window
            total = totals[owner]
            total[0] += gold[row, span].sum().item()
            total[1] += len(tokens) - 1 - first
            total[2] = total[2] and bool(single[row, span].all())
            total[3] *= credit[row, span].prod().item()
            total[4] = min(total[4], margin[row, span].min().item())


def encode_pair(tokenizer, prefix: str, target: str) -> tuple[list[int], list[int]]:
    """Token ids of (prefix, target). The pair is tokenised as one text and split where the prefix's own
    tokens end, so a subword tokenizer sees the target as it would in running text; when the joint
    tokenisation does not start with the prefix's tokens, the two are tokenised separately."""
    context = tokenizer.encode(prefix) if prefix else []
    whole = tokenizer.encode(prefix + target)
    if whole[:len(context)] == context and len(whole) > len(context):
        return context, whole[len(context):]
    return context, tokenizer.encode(target)


def loglikelihoods(model, tokenizer, pairs: Sequence[tuple[str, str]], device: str | None = None,
                   stride: int | None = None, batch_size: int = 16) -> list[TargetScore]:
    """Score each target after its prefix (EOS first)."""
    sequences = []
    for prefix, target in pairs:
        context, continuation = encode_pair(tokenizer, prefix, target)
        sequences.append(([tokenizer.eos_id, *context, *continuation], 1 + len(context)))
    return _Scorer(model, device, stride, batch_size).score(sequences)


def text_logprobs(model, tokenizer, texts: Sequence[str], device: str | None = None,
                  stride: int | None = None, batch_size: int = 16) -> list[TargetScore]:
    """Score every token of each text (EOS first, no end token)."""
    sequences = [([tokenizer.eos_id, *tokenizer.encode(text)], 1) for text in texts]
    return _Scorer(model, device, stride, batch_size).score(sequences)


def bits_per_byte(model, tokenizer, texts: Sequence[str], device: str | None = None,
                  stride: int | None = None, batch_size: int = 16) -> float:
    """-sum log2 p(token) over every token of the texts, divided by their UTF-8 bytes."""
    n_bytes = sum(len(text.encode("utf-8", errors="surrogatepass")) for text in texts)
    if n_bytes == 0:
        raise WebmillError("bits per byte: no text to score")
    scores = text_logprobs(model, tokenizer, texts, device, stride, batch_size)
    return -sum(s.logprob for s in scores) / math.log(2) / n_bytes


def _tie_aware_credit(scores: list[float], gold: int) -> tuple[bool, float]:
    """(gold is the single best, 1/k if gold is among the k best that tie else 0)."""
    best = max(scores)
    tolerance = CHOICE_TIE_TOLERANCE * max(1.0, abs(best))
    tied = [i for i, s in enumerate(scores) if s >= best - tolerance]
    return tied == [gold], (1.0 / len(tied) if gold in tied else 0.0)


def score_choices(model, tokenizer, items: Sequence[evalsets.ChoiceItem], device: str | None = None,
                  stride: int | None = None, batch_size: int = 16) -> dict:
    """accuracy, accuracy_tie_aware, accuracy_norm, margin and n over multiple-choice items."""
    if not items:
        raise WebmillError("score_choices: no items to score")
    pairs, scored_texts = [], []
    for item in items:
        if not 0 <= item.gold < len(item.choices) or len(item.choices) < 2:
            raise WebmillError(f"choice item with {len(item.choices)} choices and gold {item.gold}: needs "
                               "at least two choices and a gold index among them")
        for choice in item.choices:
            pairs.append((item.context + choice, item.suffix) if item.suffix else (item.context, choice))
            scored_texts.append(item.suffix or choice)
    scores = iter(loglikelihoods(model, tokenizer, pairs, device, stride, batch_size))
    texts = iter(scored_texts)
    strict = tie_aware = normed = margin = 0.0
    for item in items:
        loglik = [next(scores).logprob for _ in item.choices]
        per_byte = [lp / max(1, len(next(texts).encode("utf-8", errors="surrogatepass"))) for lp in loglik]
        single, credit = _tie_aware_credit(loglik, item.gold)
        strict += single
        tie_aware += credit
        normed += _tie_aware_credit(per_byte, item.gold)[0]
        probs = torch.softmax(torch.tensor(loglik, dtype=torch.float64), dim=0)
        margin += float(probs[item.gold] - max(p for i, p in enumerate(probs) if i != item.gold))
    n = len(items)
    return {"accuracy": strict / n, "accuracy_tie_aware": tie_aware / n, "accuracy_norm": normed / n,
            "margin": margin / n, "n": n}


def score_continuations(model, tokenizer, items: Sequence[evalsets.ContinuationItem],
                        device: str | None = None, stride: int | None = None, batch_size: int = 16) -> dict:
    """accuracy (greedy decode matches), accuracy_tie_aware, margin, loglik (nats) and n."""
    if not items:
        raise WebmillError("score_continuations: no items to score")
    scores = loglikelihoods(model, tokenizer, [(i.context, i.target) for i in items], device, stride, batch_size)
    n = len(scores)
    return {"accuracy": sum(s.greedy for s in scores) / n,
            "accuracy_tie_aware": sum(s.greedy_tie_aware for s in scores) / n,
            "margin": sum(s.margin for s in scores) / n,
            "loglik": sum(s.logprob for s in scores) / n, "n": n}


def _cut(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def evaluate_model(model, tokenizer, suite: EvalSuiteConfig | None = None, device: str | None = None) -> dict:
    """{"bpb": {domain: float, ..., "macro": mean over domains}, "tasks": {task: {metric: value}}}."""
    suite = suite or EvalSuiteConfig()
    domains = evalsets.resolve_domains(suite.domains)
    tasks = evalsets.resolve_tasks(suite.tasks)
    options = dict(device=device, stride=suite.stride, batch_size=suite.batch_size)
    bpb = {}
    heldout = evalsets.heldout_domains() if domains else {}
    for domain in domains:
        docs = [_cut(doc, suite.max_bytes_per_doc) for doc in heldout[domain][:suite.max_docs_per_domain]]
        bpb[domain] = bits_per_byte(model, tokenizer, docs, **options)
    if bpb:
        bpb["macro"] = sum(bpb.values()) / len(bpb)
    results = {}
    choice, continuation = evalsets.choice_tasks(), evalsets.continuation_tasks()
    for task in tasks:
        if task in continuation:
            results[task] = score_continuations(model, tokenizer, continuation[task][:suite.max_items_per_task], **options)
        else:
            results[task] = score_choices(model, tokenizer, choice[task][:suite.max_items_per_task], **options)
    return {"bpb": bpb, "tasks": results}
