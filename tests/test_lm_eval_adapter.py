"""The lm-eval adapter: local lm-eval tasks give the same numbers as webmill's own scoring."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from conftest import SAMPLES
from webmill import evalsets
from webmill.ablation.evaluate import bits_per_byte, score_choices
from webmill.ablation.model import GPT, GPTConfig
from webmill.ablation.tokenizer import ByteTokenizer

torch.set_num_threads(1)
BYTES = ByteTokenizer()

CHOICE_TASK = """task: local_copa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: acc_norm
"""
ROLLING_TASK = """task: local_books
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: bits_per_byte
"""


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def small_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=257, block_size=64, n_layer=2, n_head=2, n_embd=32))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_tasks(folder, items, docs):
    """A local multiple-choice task (local_copa) and a local rolling-likelihood task (local_books)."""
    folder.mkdir()
    copa = write_jsonl(folder / "copa.jsonl", [{"context": i.context, "choices": i.choices, "gold": i.gold}
                                               for i in items])
    books = write_jsonl(folder / "books.jsonl", [{"text": doc} for doc in docs])
    (folder / "copa.yaml").write_text(CHOICE_TASK.format(data=copa))
    (folder / "books.yaml").write_text(ROLLING_TASK.format(data=books))
    return str(folder)


def test_local_lm_eval_tasks_match_webmills_scores(tmp_path, offline):
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager

    from webmill.ablation.lm_eval_adapter import WebmillLM

    items = evalsets.choice_tasks()["copa"][:30]
    docs = [doc[:500] for doc in evalsets.heldout_domains()["books"][:3]]
    tasks = write_tasks(tmp_path / "tasks", items, docs)
    model = small_gpt()
    output = simple_evaluate(model=WebmillLM(model, BYTES, batch_size=8), tasks=["local_copa", "local_books"],
                             task_manager=TaskManager(include_path=tasks, include_defaults=False),
                             bootstrap_iters=0)
    results = output["results"]
    ours = score_choices(model, BYTES, items)
    assert results["local_copa"]["acc,none"] == pytest.approx(ours["accuracy"])
    # lm-eval normalises by characters, webmill by UTF-8 bytes: the same for COPA's ASCII text
    assert results["local_copa"]["acc_norm,none"] == pytest.approx(ours["accuracy_norm"])
    assert 0.2 < ours["accuracy"] < 0.8
    assert results["local_books"]["bits_per_byte,none"] == pytest.approx(bits_per_byte(model, BYTES, docs), rel=1e-6)


class PrefersA(torch.nn.Module):
    """Every position: the byte "a" is most likely, then "b"."""

    def __init__(self):
        super().__init__()
        logits = torch.zeros(257)
        logits[ord("a")], logits[ord("b")] = 2.0, 1.0
        self.logits = torch.nn.Parameter(logits, requires_grad=False)
        self.config = SimpleNamespace(block_size=8)

    def forward(self, idx, targets=None):
        return self.logits.expand(*idx.shape, -1), None


def test_loglikelihood_greedy_flag_and_generation():
    from lm_eval.api.instance import Instance

    from webmill.ablation.lm_eval_adapter import WebmillLM

    lm = WebmillLM(PrefersA(), BYTES)

    def requests(kind, *args):
        return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]

    (aa, aa_greedy), (ab, ab_greedy) = lm.loglikelihood(requests("loglikelihood", ("x" * 20, "aa"), ("", "ab")))
    assert aa_greedy and not ab_greedy and aa > ab
    generated = lm.generate_until(requests("generate_until", ("question", {"until": ["\n"], "max_gen_toks": 5}),
                                           ("question", {"until": ["aaa"], "max_gen_toks": 10})))
    assert generated == ["aaaaa", ""]  # 5 tokens; stopped at (and cut before) the stop string
    (text,) = lm.generate_until(requests("generate_until", ("Once upon", {"until": ["."], "max_gen_toks": 6})))
    assert len(BYTES.encode(text)) <= 6


def test_registered_as_webmill_and_built_from_a_training_checkpoint(tmp_path, offline):
    import lm_eval.api.registry as registry
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager

    from webmill.ablation.data import pack_corpus
    from webmill.ablation.lm_eval_adapter import WebmillLM
    from webmill.ablation.train import TrainConfig, train
    from webmill.errors import WebmillError

    assert registry.get_model("webmill") is WebmillLM
    model = small_gpt()
    corpus = pack_corpus([str(SAMPLES / "domains" / "nih.jsonl.gz")], BYTES, budget_tokens=1024, block_size=64, seed=0)
    train(model, corpus, TrainConfig(budget_tokens=1024, batch_size=4, warmup_steps=1, device="cpu"),
          out_dir=tmp_path / "run", progress=False)
    BYTES.save(tmp_path / "tokenizer")
    docs = [doc[:500] for doc in evalsets.heldout_domains()["web"][:2]]
    tasks = write_tasks(tmp_path / "tasks", evalsets.choice_tasks()["copa"][:2], docs)
    args = f"checkpoint={tmp_path / 'run' / 'checkpoint.pt'},tokenizer={tmp_path / 'tokenizer'}"
    output = simple_evaluate(model="webmill", model_args=args, batch_size=4, tasks=["local_books"],
                             task_manager=TaskManager(include_path=tasks, include_defaults=False),
                             bootstrap_iters=0)
    assert output["results"]["local_books"]["bits_per_byte,none"] == pytest.approx(
        bits_per_byte(model, BYTES, docs), rel=1e-6)  # the trained weights, not a fresh model
    with pytest.raises(WebmillError, match="unknown model_args temperature"):
        WebmillLM.create_from_arg_string(args + ",temperature=1")
