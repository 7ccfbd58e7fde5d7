"""Train a GPT on a packed corpus for a fixed token budget: AdamW, warm-up + cosine decay, clipping,
periodic evaluation, resumable checkpoints.

    for each batch of the packed stream (same order for every run with the same seed):
        lr ← warm-up (linear) then cosine decay to min_lr;  loss ← model(x, y);  backward;  clip;  AdamW step
        every log interval: one device sync to record the losses and refresh the progress bar
        every eval_every steps: eval_fn(model);  every checkpoint_every steps: out_dir/checkpoint.pt

The hot loop does no host/device synchronisation between log points: losses stay on the device until
then. A checkpoint holds the model, the optimizer, the step, the random state and the history, so calling
`train` again with the same out_dir continues where it stopped and ends with the same weights as an
uninterrupted run.

`trainer="dfa"` (EXPERIMENTAL) trains the transformer blocks with Direct Feedback Alignment instead of
backpropagation; see `DirectFeedback`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from webmill.ablation.data import PackedCorpus
from webmill.ablation.model import GPT, set_seed
from webmill.errors import WebmillError

__all__ = ["TrainConfig", "TrainResult", "train", "set_seed", "DirectFeedback", "TRAIN_PRESETS"]

log = logging.getLogger("webmill.ablation")

CHECKPOINT = "checkpoint.pt"
# the settings a checkpoint must share with the run that resumes it (eval, checkpoint and device may change)
RUN_KEYS = ("budget_tokens", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "grad_clip", "seed",
            "trainer")

# Training defaults that go with the model presets (model.PRESETS); docs/ablation-model.md gives their run time.
TRAIN_PRESETS: dict[str, dict] = {
    "cpu-tiny": dict(budget_tokens=4_000_000, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=20),
    "gpu-small": dict(budget_tokens=200_000_000, batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=500),
}


@dataclass
class TrainConfig:
    budget_tokens: int = 1_000_000  # tokens predicted in the whole run (steps = budget / (batch · block))
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # global gradient-norm bound; 0 turns clipping off
    eval_every: int = 0  # steps between eval_fn calls; 0: only at the end
    checkpoint_every: int = 0  # steps between checkpoints (needs out_dir); 0: only at the end
    device: str = "auto"  # cpu | cuda | auto (CUDA when available)
    seed: int = 0
    trainer: str = "backprop"  # backprop | dfa (Direct Feedback Alignment, experimental)
    log_every: int = 0  # steps between loss syncs / progress refreshes; 0: about 100 per run, at most every 50
    amp: bool = True  # bfloat16 autocast on CUDA (CPU always trains in float32)

    @classmethod
    def preset(cls, name: str, **overrides) -> "TrainConfig":
        if name not in TRAIN_PRESETS:
            raise WebmillError(f"unknown training preset {name!r}; choose one of {', '.join(TRAIN_PRESETS)}")
        return cls(**{**TRAIN_PRESETS[name], **overrides})

    def validate(self) -> None:
        for name in ("budget_tokens", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WebmillError(f"training {name} {value!r}: must be a positive whole number")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise WebmillError(f"training {name} {value!r}: must be a whole number ≥ 0")
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            raise WebmillError(f"training lr {self.lr} / min_lr {self.min_lr}: need lr > 0 and 0 ≤ min_lr ≤ lr")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise WebmillError("training weight_decay and grad_clip must be ≥ 0")
        if self.device not in ("cpu", "cuda", "auto"):
            raise WebmillError(f"training device {self.device!r}: choose cpu, cuda or auto")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise WebmillError("training device cuda: no CUDA device is available (use cpu or auto)")
        if self.trainer not in ("backprop", "dfa"):
            raise WebmillError(f"training trainer {self.trainer!r}: choose backprop or dfa")


@dataclass
class TrainResult:
    losses: list[tuple[int, int, float]] = field(default_factory=list)  # (step, tokens so far, loss of the step)
    evals: list[tuple[int, dict]] = field(default_factory=list)  # (step, eval_fn's result)
    tokens_per_s: float = 0.0  # training tokens per second of training (evaluation and checkpoints excluded)
    wall_s: float = 0.0  # seconds of this call (a resumed run: only the part after the checkpoint)
    steps: int = 0
    tokens: int = 0
    device: str = "cpu"
    trainer: str = "backprop"
    resumed_at: int | None = None  # the checkpoint step this call started from, if any

    @property
    def final_loss(self) -> float:
        """Mean loss of the last 5 % of steps (a single step's loss is noisy)."""
        tail = self.losses[-max(1, len(self.losses) // 20):]
        return sum(loss for _, _, loss in tail) / len(tail)


class DirectFeedback:
    """EXPERIMENTAL: Direct Feedback Alignment (Nøkland 2016; Launay et al. 2020 for transformers).

    The output error e = dLoss/dlogits (softmax − one-hot, divided by the token count) reaches every
    transformer block — and the embedding output, so that the input side of the embedding learns too —
    through its own fixed random matrix B_l [vocab, n_embd] drawn from the seed and never trained,
    instead of being backpropagated through the blocks above. Each block's input is detached, so no
    gradient flows between blocks; the final LayerNorm and the output head (tied to the embedding) learn
    from their true local gradient. The feedback is applied with a surrogate loss:

        objective = loss(head(h_L.detach()))  +  Σ_l  (h_l · (e @ B_l).detach()).sum()

    whose gradient with respect to a block's output h_l is exactly e @ B_l; autograd carries it into that
    block's weights only. One backward pass computes every update.
    """

    def __init__(self, model: GPT, seed: int, device: torch.device):
        config = model.config
        generator = torch.Generator().manual_seed(seed + 7919)  # fixed by the seed, apart from the init stream
        scale = 1.0 / math.sqrt(config.vocab_size)
        self.matrices = [(torch.randn(config.vocab_size, config.n_embd, generator=generator) * scale).to(device)
                         for _ in range(config.n_layer + 1)]

    def objective(self, model: GPT, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the language-model loss, the objective to call backward on)."""
        outputs = [model.embed(x)]
        for block in model.blocks:
            outputs.append(block(outputs[-1].detach()))
        logits = model.head(outputs[-1].detach()).float()
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        with torch.no_grad():
            error = torch.softmax(logits, dim=-1)
            error.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(error[..., :1], -1.0))
            error /= y.numel()
        surrogate = sum((h * (error @ B).to(h.dtype)).sum() for h, B in zip(outputs, self.matrices))
        return loss, loss + surrogate


def train(model: GPT, corpus: PackedCorpus, config: TrainConfig, out_dir: str | Path | None = None,
          eval_fn: Callable[[GPT], dict[str, float]] | None = None, progress: bool = True) -> TrainResult:
    """Train `model` in place on `corpus` for `config.budget_tokens` tokens; see the module docstring."""
    config.validate()
    block = corpus.block_size
    if block > model.config.block_size:
        raise WebmillError(f"the corpus is packed in blocks of {block} tokens, longer than the model's "
                           f"block_size {model.config.block_size}")
    if config.budget_tokens // block * block > corpus.budget_tokens:  # both are rounded down to whole blocks
        raise WebmillError(f"training budget {config.budget_tokens} tokens exceeds the {corpus.budget_tokens} "
                           "tokens the corpus was packed for")
    tokens_per_step = config.batch_size * block
    steps = config.budget_tokens // tokens_per_step
    if steps < 1:
        raise WebmillError(f"training budget {config.budget_tokens} tokens is less than one step "
                           f"(batch {config.batch_size} × block {block} = {tokens_per_step} tokens)")
    device = torch.device("cuda" if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    if config.trainer == "dfa":
        log.warning("trainer 'dfa' (Direct Feedback Alignment) is EXPERIMENTAL: blocks learn from a fixed random "
                    "projection of the output error, not from backpropagation")

    set_seed(config.seed)
    model.to(device).train()
    optimizer = _optimizer(model, config, device)
    feedback = DirectFeedback(model, config.seed, device) if config.trainer == "dfa" else None
    result = TrainResult(steps=steps, tokens=steps * tokens_per_step, device=device.type, trainer=config.trainer)
    fingerprint = _fingerprint(corpus, model)
    checkpoint = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    start, trained_s = 0, 0.0
    if checkpoint is not None and checkpoint.is_file():
        start, trained_s = _resume(checkpoint, model, optimizer, config, fingerprint, result, device)
        result.resumed_at = start
        log.info("resuming %s at step %d of %d", checkpoint, start, steps)

    log_every = config.log_every or max(1, min(50, steps // 100))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.amp
                else nullcontext())
    parameters = [p for p in model.parameters() if p.requires_grad]
    pending: list[torch.Tensor] = []  # losses of the steps since the last sync, still on the device
    bar = _progress_bar(steps, start, config.trainer, progress)
    began = time.perf_counter()
    last_sync, last_sync_step = began, start
    side_s = 0.0  # time spent evaluating and checkpointing, left out of tokens/s
    for step, batch in enumerate(corpus.batches(config.batch_size, start=start), start=start):
        if step >= steps:
            break
        batch = batch.to(device, non_blocking=True)
        x, y = batch[:, :-1], batch[:, 1:]
        lr = _learning_rate(step, steps, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            if feedback is None:
                _, loss = model(x, y)
                objective = loss
            else:
                loss, objective = feedback.objective(model, x, y)
        objective.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pending.append(loss.detach())

        done = step + 1
        if done % log_every == 0 or done == steps:
            _flush(pending, result, done, tokens_per_step)  # the one device sync per log interval
            loss_now = result.losses[-1][2]
            now = time.perf_counter()
            bar.update(done - last_sync_step)
            bar.set_postfix(loss=f"{loss_now:.3f}", lr=f"{lr:.2e}",
                            tok_s=f"{(done - last_sync_step) * tokens_per_step / max(now - last_sync, 1e-9):,.0f}")
            if not math.isfinite(loss_now):
                bar.close()
                raise WebmillError(f"training diverged at step {done} (loss {loss_now}); lower the learning rate")
            last_sync, last_sync_step = now, done
        side_began = time.perf_counter()
        if eval_fn is not None and ((config.eval_every and done % config.eval_every == 0) or done == steps):
            model.eval()
            cuda_devices = [torch.cuda.current_device()] if device.type == "cuda" else []
            with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices):
                scores = eval_fn(model)  # its random draws, if any, must not change the training run
            model.train()
            result.evals.append((done, scores))
            log.info("step %d: %s", done, scores)
        if checkpoint is not None and ((config.checkpoint_every and done % config.checkpoint_every == 0)
                                       or done == steps):
            _flush(pending, result, done, tokens_per_step)
            trained = trained_s + (time.perf_counter() - began) - side_s - (time.perf_counter() - side_began)
            _save(checkpoint, model, optimizer, config, fingerprint, result, done, trained)
        side = time.perf_counter() - side_began
        side_s += side
        last_sync += side  # keep the progress bar's tokens/s to training time
    bar.close()
    result.wall_s = time.perf_counter() - began
    trained_s += result.wall_s - side_s
    if trained_s > 0:
        result.tokens_per_s = result.tokens / trained_s
    return result


def _flush(pending: list[torch.Tensor], result: TrainResult, done: int, tokens_per_step: int) -> None:
    """Record losses still on the device (before a checkpoint, so that it holds the whole history)."""
    if pending:
        values = torch.stack(pending).float().tolist()
        first = done - len(values)
        result.losses += [(first + i + 1, (first + i + 1) * tokens_per_step, v) for i, v in enumerate(values)]
        pending.clear()


def _learning_rate(step: int, steps: int, config: TrainConfig) -> float:
    """Linear warm-up from lr/warmup to lr, then cosine decay reaching min_lr at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, steps - 1 - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def _optimizer(model: GPT, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # weight decay on the matrices of the blocks only: not on LayerNorms, biases or embeddings
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in embeddings]
    no_decay = [p for p in model.parameters() if p.dim() < 2 or id(p) in embeddings]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # the fused kernel updates every parameter in one call (CPU and CUDA), much cheaper than the default loop
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=True)


def _fingerprint(corpus: PackedCorpus, model: GPT) -> dict:
    """What must not change between a checkpoint and the run resuming it: the data and the architecture."""
    return {"tokens_sha256": hashlib.sha256(corpus.tokens.tobytes()).hexdigest(),
            "block_size": corpus.block_size, "model": model.config.to_dict()}


def _save(path: Path, model, optimizer, config: TrainConfig, fingerprint: dict, result: TrainResult,
          step: int, trained_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": "webmill-ablation-checkpoint/1", "step": step, "trained_s": trained_s,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "run": {key: getattr(config, key) for key in RUN_KEYS}, "fingerprint": fingerprint,
        "losses": result.losses, "evals": result.evals,
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a crash while saving leaves the previous checkpoint intact


def _resume(path: Path, model, optimizer, config: TrainConfig, fingerprint: dict, result: TrainResult,
            device: torch.device) -> tuple[int, float]:
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # a truncated or foreign file
        raise WebmillError(f"{path}: unreadable checkpoint ({error.__class__.__name__}); delete it to start over") \
            from None
    if not isinstance(state, dict) or state.get("format") != "webmill-ablation-checkpoint/1":
        raise WebmillError(f"{path}: not a webmill ablation checkpoint")
    run = {key: getattr(config, key) for key in RUN_KEYS}
    for key in RUN_KEYS:
        if state["run"].get(key) != run[key]:
            raise WebmillError(f"{path} was written by a run with {key}={state['run'].get(key)!r}, not {run[key]!r}; "
                               "use another output folder or delete the checkpoint")
    for key in ("block_size", "model", "tokens_sha256"):
        if state["fingerprint"][key] != fingerprint[key]:
            what = {"model": "model configuration", "tokens_sha256": "corpus"}.get(key, key)
            raise WebmillError(f"{path} was written for another {what}; use another output folder or delete it")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    result.losses = [tuple(entry) for entry in state["losses"]]
    result.evals = [tuple(entry) for entry in state["evals"]]
    torch.set_rng_state(state["rng"]["torch"].cpu())
    random.setstate(state["rng"]["python"])
    if state["rng"]["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["step"], state["trained_s"]


def _progress_bar(steps: int, start: int, trainer: str, enabled: bool):
    from tqdm.auto import tqdm

    desc = "train" if trainer == "backprop" else "train [DFA, experimental]"
    return tqdm(total=steps, initial=start, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)
