"""A webmill ablation model as an lm-eval (0.4) `LM`, so any lm-eval task, shipped or local, can score it.

    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager
    lm = WebmillLM(model, tokenizer)
    simple_evaluate(model=lm, tasks=["my_task"], task_manager=TaskManager(include_path="my_tasks/"))

Requests are scored with the same code as `webmill.ablation.evaluate` (EOS first, windows of block_size),
so a multiple-choice task gives the same accuracy here as `score_choices` on the same items. Importing
this module registers the class with lm-eval under the name "webmill", so that (in the same process)
`simple_evaluate(model="webmill", model_args="checkpoint=RUN/checkpoint.pt,tokenizer=TOKENIZER_DIR")`
builds it from a training checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.utils import simple_parse_args_string

from webmill.ablation.evaluate import loglikelihoods, resolve_device, text_logprobs
from webmill.errors import WebmillError


@register_model("webmill")
class WebmillLM(LM):
    """Wraps (model, tokenizer): a model with `forward(idx) -> (logits, _)` and `config.block_size`, and
    a tokenizer with `encode`, `decode` and `eos_id`."""

    def __init__(self, model, tokenizer, device: str | None = None, batch_size: int = 16,
                 stride: int | None = None, max_gen_toks: int = 64):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self._device = resolve_device(device, model)
        self.model.to(self._device)
        self.batch_size, self.stride, self.max_gen_toks = int(batch_size), stride, int(max_gen_toks)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "WebmillLM":
        """`checkpoint=PATH,tokenizer=DIR[,device=cuda][,batch_size=16]` (a training checkpoint and the
        folder the study saved its tokenizer in)."""
        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> "WebmillLM":
        args = dict(arg_dict)
        for key in ("device", "batch_size"):  # lm-eval's own options, when set (batch_size "auto": ours)
            value = (additional_config or {}).get(key)
            if value is not None and not (key == "batch_size" and str(value).startswith("auto")):
                args[key] = value
        if "checkpoint" not in args or "tokenizer" not in args:
            raise WebmillError("lm-eval model 'webmill' needs model_args checkpoint=PATH,tokenizer=DIR")
        unknown = set(args) - {"checkpoint", "tokenizer", "device", "batch_size", "stride", "max_gen_toks"}
        if unknown:
            raise WebmillError(f"lm-eval model 'webmill': unknown model_args {', '.join(sorted(unknown))} (known: "
                               "checkpoint, tokenizer, device, batch_size, stride, max_gen_toks)")
        from webmill.ablation.tokenizer import load_tokenizer

        model = load_checkpoint_model(args.pop("checkpoint"))
        tokenizer = load_tokenizer(args.pop("tokenizer"))
        return cls(model, tokenizer, **args)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_id

    @property
    def max_length(self) -> int:
        return self.model.config.block_size

    def _options(self) -> dict:
        return dict(device=str(self._device), stride=self.stride, batch_size=self.batch_size)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [tuple(request.args) for request in requests]
        scores = loglikelihoods(self.model, self.tokenizer, pairs, **self._options())
        results = [(score.logprob, score.greedy) for score in scores]
        for pair, result in zip(pairs, results):
            self.cache_hook.add_partial("loglikelihood", pair, result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        texts = [request.args[0] for request in requests]
        results = [score.logprob for score in text_logprobs(self.model, self.tokenizer, texts, **self._options())]
        for text, result in zip(texts, results):
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), result)
        return results

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy decoding, one request at a time, until a stop string, EOS or max_gen_toks tokens."""
        was_training = self.model.training
        self.model.eval()
        try:
            return [self._generate(*request.args) for request in requests]
        finally:
            self.model.train(was_training)

    def _generate(self, context: str, gen_kwargs: dict) -> str:
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        limit = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
        ids = [self.tokenizer.eos_id, *self.tokenizer.encode(context)]
        generated: list[int] = []
        text = ""
        for _ in range(limit):
            window = torch.tensor([ids[-self.max_length:]], device=self._device)
            logits, _ = self.model(window)
            next_id = int(logits[0, -1].argmax())
            if next_id == self.tokenizer.eos_id:
                break
            ids.append(next_id)
            generated.append(next_id)
            text = self.tokenizer.decode(generated)
            if any(stop in text for stop in until):
                break
        for stop in until:
            text = text.split(stop)[0]
        self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return text


def load_checkpoint_model(path: str | Path):
    """The GPT saved in an ablation training checkpoint (`checkpoint.pt` of a run folder)."""
    from webmill.ablation.model import GPT, GPTConfig

    path = Path(path)
    if not path.is_file():
        raise WebmillError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    try:
        config, weights = state["fingerprint"]["model"], state["model"]
    except (TypeError, KeyError):
        raise WebmillError(f"{path}: not a webmill ablation checkpoint") from None
    model = GPT(GPTConfig(**config))
    model.load_state_dict(weights)
    return model
