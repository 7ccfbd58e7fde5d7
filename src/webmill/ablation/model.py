"""A small pre-LN decoder-only GPT with the architecture knobs of the BigScience and Falcon ablations.

    idx ─► token embedding (+ learned positions) ─► [LayerNorm if emb_norm] ─► n_layer × Block
        ─► LayerNorm ─► logits = x @ token_embedding.T   (tied input/output embeddings)

    Block:  x = x + Attention(LayerNorm(x));  x = x + MLP(LayerNorm(x))

Knobs (GPTConfig):
- pos: how the model knows where a token is. "none" (only the causal mask, which is enough for a
  decoder to infer positions), "learned" (a trained table added to the embedding, as GPT-2), "rotary"
  (queries and keys rotated by position, as GPT-J/Falcon), "alibi" (a linear distance penalty added to the
  attention scores, one slope per head, as BLOOM).
- mlp: "gelu" (4·d hidden units) or "swiglu" (gated, ≈ 8/3·d hidden units so the parameter count matches).
- emb_norm: a LayerNorm right after the embedding (BLOOM's embedding LayerNorm).
- attention: "mha" (one key/value head per query head) or "mqa" (multi-query: all query heads share one
  key/value head, as Falcon).
Attention always goes through torch's fused `scaled_dot_product_attention`: causal via `is_causal`, or,
for ALiBi, with the distance penalty and the causal mask folded into one additive float mask.

Weights are initialised from torch's global generator: call `set_seed(seed)` (or use `build_model`) first.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from webmill.errors import WebmillError

POSITIONS = ("none", "learned", "rotary", "alibi")
MLPS = ("gelu", "swiglu")
ATTENTIONS = ("mha", "mqa")

# Model shapes; the vocabulary size comes from the tokenizer. Parameter counts are for the byte vocabulary
# (257) with learned positions and the GELU MLP; docs/ablation-model.md lists them.
PRESETS: dict[str, dict] = {
    # ~1.0M parameters: trains at its default budget in minutes on two CPU cores
    "cpu-tiny": dict(block_size=256, n_layer=5, n_head=4, n_embd=128),
    # ~10.8M parameters: for one GPU
    "gpu-small": dict(block_size=512, n_layer=6, n_head=6, n_embd=384),
}


@dataclass
class GPTConfig:
    vocab_size: int = 257
    block_size: int = 256
    n_layer: int = 5
    n_head: int = 4
    n_embd: int = 128
    pos: str = "learned"
    mlp: str = "gelu"
    emb_norm: bool = False
    attention: str = "mha"
    dropout: float = 0.0

    @classmethod
    def preset(cls, name: str, vocab_size: int, **overrides) -> "GPTConfig":
        if name not in PRESETS:
            raise WebmillError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], "vocab_size": vocab_size, **overrides})

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def validate(self) -> None:
        """Raise WebmillError naming the first impossible setting."""
        for key, value, allowed in (("pos", self.pos, POSITIONS), ("mlp", self.mlp, MLPS),
                                    ("attention", self.attention, ATTENTIONS)):
            if value not in allowed:
                raise WebmillError(f"model {key} {value!r}: choose one of {', '.join(allowed)}")
        if not isinstance(self.emb_norm, bool):
            raise WebmillError(f"model emb_norm {self.emb_norm!r}: use true or false")
        for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WebmillError(f"model {key} {value!r}: must be a positive whole number")
        if self.vocab_size < 2:
            raise WebmillError(f"model vocab_size {self.vocab_size}: needs at least 2 tokens")
        if self.n_embd % self.n_head:
            raise WebmillError(f"model n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.pos == "rotary" and self.head_dim % 2:
            raise WebmillError(f"model pos rotary needs an even head dimension; n_embd/n_head = {self.head_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise WebmillError(f"model dropout {self.dropout}: must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


class Rotary(nn.Module):
    """Rotary position embedding: rotates each (even, odd) pair of query/key features by a position angle."""

    def __init__(self, head_dim: int, block_size: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # [T, head_dim/2]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, H, T, head_dim]
        T = x.size(-2)
        cos, sin = self.cos[:T].to(x.dtype), self.sin[:T].to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """The ALiBi head slopes: a geometric sequence 2^(-8/n), 2^(-16/n), … (interleaved when n is no power of 2)."""
    def powers(n):
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]
    if math.log2(n_head).is_integer():
        return torch.tensor(powers(n_head))
    closest = 2 ** math.floor(math.log2(n_head))
    return torch.tensor(powers(closest) + powers(2 * closest)[0::2][: n_head - closest])


def alibi_mask(n_head: int, block_size: int) -> torch.Tensor:
    """[H, T, T] additive attention mask: -slope·distance to earlier tokens, -inf to later ones."""
    position = torch.arange(block_size)
    distance = (position[:, None] - position[None, :]).float()  # query i, key j: i - j
    bias = -alibi_slopes(n_head)[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))


class Attention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.kv_heads = 1 if config.attention == "mqa" else config.n_head
        # queries, keys and values from one matrix; multi-query attention has one key and one value head
        self.qkv = nn.Linear(config.n_embd, config.n_embd + 2 * self.kv_heads * self.head_dim, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.proj.residual = True
        self.dropout = config.dropout
        self.rotary = Rotary(self.head_dim, config.block_size) if config.pos == "rotary" else None
        if config.pos == "alibi":
            self.register_buffer("alibi", alibi_mask(config.n_head, config.block_size), persistent=False)
        else:
            self.alibi = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        kv_size = self.kv_heads * self.head_dim
        q, k, v = self.qkv(x).split((C, kv_size, kv_size), dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)   # [B, H, T, hd]
        k = k.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # [B, H or 1, T, hd]
        v = v.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.kv_heads != self.n_head:  # share the single key/value head across all query heads (a view, no copy)
            k, v = k.expand(B, self.n_head, T, self.head_dim), v.expand(B, self.n_head, T, self.head_dim)
        dropout = self.dropout if self.training else 0.0
        if self.alibi is not None:
            mask = self.alibi[:, :T, :T].to(q.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        if self.swiglu:
            hidden = 8 * ((8 * config.n_embd // 3 + 7) // 8)  # 8/3·d, rounded up to a multiple of 8
            self.up = nn.Linear(config.n_embd, 2 * hidden, bias=False)  # value and gate in one matrix
        else:
            hidden = 4 * config.n_embd
            self.up = nn.Linear(config.n_embd, hidden, bias=False)
        self.down = nn.Linear(hidden, config.n_embd, bias=False)
        self.down.residual = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            value, gate = self.up(x).chunk(2, dim=-1)
            return self.down(value * F.silu(gate))
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.n_embd)
        self.attn = Attention(config)
        self.ln_mlp = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_attn(x)))
        return x + self.dropout(self.mlp(self.ln_mlp(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.pos == "learned" else None
        self.ln_emb = nn.LayerNorm(config.n_embd) if config.emb_norm else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2's scheme: N(0, 0.02), the projections back into the residual stream scaled by 1/sqrt(2·layers)
        if isinstance(module, nn.Linear):
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if getattr(module, "residual", False) else 0.02
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids [B, T] → the residual stream entering the first block [B, T, n_embd]."""
        T = idx.size(1)
        if T > self.config.block_size:
            raise WebmillError(f"sequence of {T} tokens is longer than the model's block_size {self.config.block_size}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        return self.drop(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output → logits, through the final LayerNorm and the tied embedding."""
        return F.linear(self.ln_f(x), self.wte.weight)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def num_parameters(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())


def set_seed(seed: int) -> None:
    """Seed every generator a run draws from (Python, torch CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def build_model(config: GPTConfig, seed: int) -> GPT:
    """A freshly initialised model whose weights depend only on (config, seed)."""
    set_seed(seed)
    return GPT(config)
