"""Ablation studies: train the same small LM on each corpus (or each architecture variant), several seeds
each, score every run on the same held-out set, and write `reports/<study>/results.json` + a report.

A study is a YAML file, validated like a recipe (errors name the file, the section and the key):

    name: web-corpora
    corpora:                          # label -> Parquet folder(s) with a `text` column
      refinedweb: output/refinedweb/data
      fineweb: output/fineweb/data
    tokenizer: byte                   # or {bpe: {vocab_size: 1024}}: trained once, shared by all runs
    model: {preset: cpu-tiny}         # a preset of webmill.ablation.model plus GPTConfig overrides
    train: {budget_tokens: 2000000, batch_size: 16, lr: 0.003}
    seeds: [0, 1, 2]
    eval: {max_docs_per_domain: 20}
    decontaminate: true               # skip training documents that share a 13-gram with the eval sets

An architecture study replaces `corpora` by one `corpus` and `variants: {label: {GPTConfig overrides}}`
(a variant may also carry `train: {...}` overrides, e.g. `trainer: dfa`).

Every run (label × seed) is cached in `runs/<label>/seed-<seed>.json` with a fingerprint of everything it
depends on (corpus files, tokenizer, model, training and eval settings); running the study again reuses
the runs whose fingerprint still matches, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from webmill.errors import WebmillError
from webmill.stages.registry import param
from webmill.validate import ParamError, build_params

RESULTS_FORMAT = "webmill-ablation-results/1"
TOP_LEVEL_KEYS = ("name", "description", "corpora", "corpus", "variants", "tokenizer", "model", "train",
                  "seeds", "eval", "decontaminate")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # labels name folders and plot legends
MIN_SEEDS = 3


class StudyError(WebmillError):
    """A study file problem, located by file, section and key."""

    def __init__(self, path, message: str, section: str | None = None, key: str | None = None):
        where = str(path)
        if section is not None:
            where += f", {section}"
        if key is not None:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")


@dataclass
class BpeSettings:
    vocab_size: int = param(1024, "pieces of the SentencePiece BPE vocabulary (byte fallback included)")
    sample_chars_per_corpus: int = param(2_000_000, "characters of documents taken from each corpus to train "
                                                    "it (equal shares, seeded sample)")
    seed: int = param(0, "seed of the tokenizer training")


@dataclass
class EvalSettings:
    """What every run is scored on (`webmill.ablation.evaluate.EvalSuiteConfig`)."""

    domains: list[str] | None = param(None, "held-out domains for bits-per-byte; null: all shipped domains")
    tasks: list[str] | None = param(None, "choice / minimal-pair tasks; null: all shipped tasks")
    max_docs_per_domain: int = param(50, "held-out documents scored per domain")
    max_items_per_task: int = param(200, "items scored per task")
    max_bytes_per_doc: int = param(4000, "each held-out document is cut to this many bytes")
    stride: int | None = param(None, "tokens a scoring window advances by on long documents; null: block_size")


@dataclass
class Study:
    name: str
    path: Path
    description: str
    kind: str  # "corpora" (one model, several corpora) or "variants" (several models, one corpus)
    corpora: dict[str, list[str]]  # label -> corpus paths (for variants: the same paths for every label)
    model: dict[str, Any]  # preset name + GPTConfig overrides shared by all runs
    variants: dict[str, dict[str, Any]]  # label -> {"model": overrides, "train": overrides}
    tokenizer: str | BpeSettings  # "byte" or BPE settings
    train: dict[str, Any]  # TrainConfig values (seed and device are set per run)
    seeds: list[int]
    eval: EvalSettings
    decontaminate: bool = True
    raw: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.corpora)


@dataclass
class RunSpec:
    index: int
    label: str
    seed: int
    paths: list[str]
    model: dict[str, Any]  # GPTConfig values without vocab_size
    train: dict[str, Any]  # TrainConfig values without seed and device


# ---------------------------------------------------------------- loading and validation


def load_study(path: str | os.PathLike, seeds: int | None = None, budget_tokens: int | None = None) -> Study:
    """Read and validate a study file; `seeds` (use seeds 0..N-1) and `budget_tokens` override it."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(path, "study file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise StudyError(path, f"not valid YAML (tags that construct objects are refused): {err}") from None
    return parse_study(raw, path, seeds=seeds, budget_tokens=budget_tokens)


def parse_study(raw: Any, path: Path, seeds: int | None = None, budget_tokens: int | None = None) -> Study:
    if not isinstance(raw, dict):
        raise StudyError(path, "a study must be a YAML mapping")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise StudyError(path, f"unknown top-level key (known: {', '.join(TOP_LEVEL_KEYS)})", key=key)
    name = str(raw.get("name") or path.stem)
    if not LABEL.match(name):
        raise StudyError(path, "use letters, digits, '.', '_' or '-' (it names the report folder)", key="name")

    kind, corpora, variants = _parse_corpora(raw, path)
    tokenizer = _parse_tokenizer(raw.get("tokenizer", "byte"), path)
    model = _parse_model(raw.get("model"), path)
    train = _parse_train(raw.get("train"), path, "train")
    if budget_tokens is not None:
        train["budget_tokens"] = budget_tokens
    run_seeds = _parse_seeds(raw.get("seeds", list(range(MIN_SEEDS))), path) if seeds is None else list(range(seeds))
    if not run_seeds:
        raise StudyError(path, "at least one seed is needed", key="seeds")
    try:
        eval_settings = build_params(EvalSettings, raw.get("eval"), what="eval setting")
    except ParamError as err:
        raise StudyError(path, str(err), section="eval", key=err.key) from None
    _check_eval_names(eval_settings, path)
    decontaminate = raw.get("decontaminate", True)
    if not isinstance(decontaminate, bool):
        raise StudyError(path, f"expected true or false, got {decontaminate!r}", key="decontaminate")

    study = Study(name=name, path=path, description=str(raw.get("description") or ""), kind=kind,
                  corpora=corpora, model=model, variants=variants, tokenizer=tokenizer, train=train,
                  seeds=run_seeds, eval=eval_settings, decontaminate=decontaminate, raw=raw)
    for spec in plan_runs(study):  # every label's model and training settings must build
        _check_model(spec.model, path, spec.label)
        _check_train(spec.train, path, spec.label)
    return study


def _check_eval_names(settings: EvalSettings, path: Path) -> None:
    from webmill.evalsets import resolve_domains, resolve_tasks

    for key, resolve, names in (("domains", resolve_domains, settings.domains),
                                ("tasks", resolve_tasks, settings.tasks)):
        try:
            resolve(names)
        except WebmillError as err:
            raise StudyError(path, str(err), section="eval", key=key) from None
    for key in ("max_docs_per_domain", "max_items_per_task", "max_bytes_per_doc"):
        if getattr(settings, key) < 1:
            raise StudyError(path, "must be at least 1", section="eval", key=key)


def _paths(value: Any, path: Path, section: str, key: str) -> list[str]:
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise StudyError(path, f"expected a path or a list of paths, got {value!r}", section=section, key=key)
    return paths


def _check_label(label: Any, path: Path, section: str) -> str:
    if not isinstance(label, str) or not LABEL.match(label):
        raise StudyError(path, "labels use letters, digits, '.', '_' or '-'", section=section, key=str(label))
    return label


def _parse_corpora(raw: dict, path: Path) -> tuple[str, dict[str, list[str]], dict[str, dict]]:
    if ("corpora" in raw) == ("variants" in raw):
        raise StudyError(path, "give either 'corpora' (a corpus study) or 'corpus' + 'variants' (an architecture "
                               "study)", key="corpora")
    if "corpora" in raw:
        if "corpus" in raw:
            raise StudyError(path, "'corpus' goes with 'variants'; a corpus study lists its 'corpora'", key="corpus")
        corpora = raw["corpora"]
        if not isinstance(corpora, dict) or not corpora:
            raise StudyError(path, "expected a mapping {label: path or list of paths}", key="corpora")
        parsed, makers = {}, {}
        for label, value in corpora.items():
            label = _check_label(label, path, "corpora")
            if isinstance(value, dict):  # {paths: ..., made_by: "the command that makes it"}
                unknown = set(value) - {"paths", "made_by"}
                if unknown or "paths" not in value:
                    raise StudyError(path, "a corpus is a path, a list of paths or {paths: ..., made_by: COMMAND}",
                                     section="corpora", key=label)
                if "made_by" in value:
                    makers[label] = str(value["made_by"])
                value = value["paths"]
            parsed[label] = _paths(value, path, "corpora", label)
        return "corpora", parsed, {label: {"model": {}, "train": {}, "made_by": makers.get(label)}
                                   for label in parsed}

    if "corpus" not in raw:
        raise StudyError(path, "an architecture study trains every variant on one 'corpus'", key="corpus")
    paths = _paths(raw["corpus"], path, "corpus", "corpus")
    variants = raw["variants"]
    if not isinstance(variants, dict) or not variants:
        raise StudyError(path, "expected a mapping {label: {model overrides}}", key="variants")
    parsed_variants = {}
    for label, overrides in variants.items():
        label = _check_label(label, path, "variants")
        if not isinstance(overrides or {}, dict):
            raise StudyError(path, "expected a mapping of model overrides", section="variants", key=label)
        overrides = dict(overrides or {})
        train = overrides.pop("train", None) or {}
        if "preset" in overrides:
            raise StudyError(path, "variants override single settings; the preset is set once under 'model'",
                             section=f"variants '{label}'", key="preset")
        parsed_variants[label] = {"model": overrides, "train": _parse_train(train, path, f"variants '{label}', train")}
    return "variants", {label: paths for label in parsed_variants}, parsed_variants


def _parse_tokenizer(value: Any, path: Path) -> str | BpeSettings:
    if value == "byte" or value == {"byte": None}:
        return "byte"
    if isinstance(value, dict) and list(value) == ["bpe"]:
        try:
            settings = build_params(BpeSettings, value["bpe"], what="bpe setting")
        except ParamError as err:
            raise StudyError(path, str(err), section="tokenizer bpe", key=err.key) from None
        if settings.vocab_size < 300:
            raise StudyError(path, "must be at least 300 (256 byte pieces are reserved)", section="tokenizer bpe",
                             key="vocab_size")
        return settings
    raise StudyError(path, f"expected 'byte' or {{bpe: {{vocab_size: N}}}}, got {value!r}", key="tokenizer")


def _parse_model(value: Any, path: Path) -> dict[str, Any]:
    from webmill.ablation.model import PRESETS

    if not isinstance(value or {}, dict):
        raise StudyError(path, "expected a mapping {preset: NAME, <GPTConfig overrides>}", key="model")
    model = dict(value or {})
    preset = model.setdefault("preset", "cpu-tiny")
    if preset not in PRESETS:
        raise StudyError(path, f"unknown preset (known: {', '.join(PRESETS)})", section="model", key="preset")
    return model


def _parse_train(value: Any, path: Path, section: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(path, "expected a mapping of training settings", key=section)
    if "seed" in value:
        raise StudyError(path, "seeds are set once, in the top-level 'seeds' list", section=section, key="seed")
    return dict(value)


def _parse_seeds(value: Any, path: Path) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise StudyError(path, f"expected a list of integers, got {value!r}", key="seeds")
    if len(set(value)) != len(value):
        raise StudyError(path, "seeds repeat", key="seeds")
    return list(value)


def model_config(model: dict[str, Any], vocab_size: int):
    """GPTConfig of a preset + overrides, for a tokenizer of `vocab_size` ids."""
    from webmill.ablation.model import PRESETS, GPTConfig

    values = {**PRESETS[model["preset"]], **{k: v for k, v in model.items() if k != "preset"}}
    values["vocab_size"] = vocab_size
    config = build_params(GPTConfig, values, what="model setting")
    config.validate()  # allowed values (pos, mlp, attention) and shapes; raises WebmillError
    return config


def train_config(train: dict[str, Any], seed: int, device: str):
    from webmill.ablation.train import TrainConfig

    return build_params(TrainConfig, {**train, "seed": seed, "device": device}, what="train setting")


def _check_model(model: dict[str, Any], path: Path, label: str) -> None:
    if "vocab_size" in model:
        raise StudyError(path, "set by the tokenizer", section="model", key="vocab_size")
    try:
        model_config(model, 257)
    except ParamError as err:
        raise StudyError(path, str(err), section=f"model (run '{label}')", key=err.key) from None
    except WebmillError as err:
        raise StudyError(path, str(err), section=f"model (run '{label}')") from None


def _check_train(train: dict[str, Any], path: Path, label: str) -> None:
    try:
        train_config(train, 0, "cpu").validate()
    except ParamError as err:
        raise StudyError(path, str(err), section=f"train (run '{label}')", key=err.key) from None
    except WebmillError as err:
        raise StudyError(path, str(err), section=f"train (run '{label}')") from None


def plan_runs(study: Study) -> list[RunSpec]:
    """Every (label, seed), seeds inner: the first seed of every label is done before the second."""
    runs = []
    for seed in study.seeds:
        for label in study.labels:
            variant = study.variants[label]
            runs.append(RunSpec(index=len(runs) + 1, label=label, seed=seed, paths=study.corpora[label],
                                model={**study.model, **variant["model"]},
                                train={**study.train, **variant["train"]}))
    return runs


# ---------------------------------------------------------------- corpora


def check_corpora(study: Study) -> dict[str, list[Path]]:
    """Label -> corpus files; a missing corpus is an error naming the command that makes it."""
    from webmill.ablation.data import list_files

    files = {}
    for label, paths in study.corpora.items():
        for p in paths:
            if not any(c in p for c in "*?[") and not Path(p).exists():
                made_by = study.variants[label].get("made_by")
                hint = f"make it with `{made_by}`" if made_by else _maker_hint(p)
                raise StudyError(study.path, f"'{p}' does not exist; {hint}", section="corpora", key=label)
        try:
            files[label] = list_files(paths)
        except WebmillError as err:
            raise StudyError(study.path, str(err), section="corpora", key=label) from None
    return files


def _maker_hint(corpus_path: str) -> str:
    """webmill's own outputs are `<dir>/<recipe>/data`: name the recipe that writes them."""
    parts = Path(corpus_path).parts
    if len(parts) >= 2 and parts[-1] == "data":
        recipe = Path("pipelines") / f"{parts[-2]}.yaml"
        if recipe.is_file():
            return f"make it with `webmill run {recipe} --output {Path(*parts[:-1])}` (or `make demo`)"
    return "make it with `webmill run <recipe>` or point the study at an existing Parquet/JSONL corpus"


def fingerprint_files(files: list[Path]) -> list[list]:
    # size + modification time: cheap on large corpora, and a rewritten corpus is a different corpus
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- tokenizer and decontamination


def prepare_tokenizer(study: Study, files: dict[str, list[Path]], out_dir: Path, log: Callable[[str], None]):
    """The one tokenizer every run shares, with a description for results.json."""
    from webmill.ablation.tokenizer import ByteTokenizer, load_tokenizer, train_bpe

    if study.tokenizer == "byte":
        tokenizer = ByteTokenizer()
        return tokenizer, {"kind": "byte", "name": tokenizer.name, "vocab_size": tokenizer.vocab_size,
                           "fingerprint": digest(["byte", tokenizer.vocab_size])}

    settings: BpeSettings = study.tokenizer
    unique_corpora = {json.dumps(sorted(map(str, f))): f for f in files.values()}  # variants share one corpus
    fingerprint = digest([dataclasses.asdict(settings), [fingerprint_files(f) for f in unique_corpora.values()]])
    folder = out_dir / "tokenizer"
    info_file = folder / "study-tokenizer.json"  # beside the tokenizer's own files
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("fingerprint") == fingerprint:
            log(f"tokenizer: reusing {info['name']} in {folder}")
            return load_tokenizer(str(folder)), info

    from webmill.ablation.data import balanced_sample

    corpora = list(unique_corpora.values())
    sample = balanced_sample([[str(f) for f in corpus] for corpus in corpora], settings.sample_chars_per_corpus,
                             settings.seed)
    log(f"tokenizer: training BPE ({settings.vocab_size} pieces) on {len(sample)} documents, "
        f"up to {settings.sample_chars_per_corpus:,} characters from each of {len(corpora)} corpora")
    tokenizer = train_bpe(sample, settings.vocab_size, settings.seed)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder))
    info = {"kind": "bpe", "name": tokenizer.name, "vocab_size": tokenizer.vocab_size, "fingerprint": fingerprint,
            "settings": dataclasses.asdict(settings), "trained_on": {"documents": len(sample),
                                                                     "characters": sum(map(len, sample)),
                                                                     "corpora": len(corpora)}}
    info_file.write_text(json.dumps(info, indent=2))
    return tokenizer, info


class Decontaminator:
    """`keep(text)` for pack_corpus: False for a document sharing a 13-gram with an eval set; tallies which."""

    def __init__(self, index):
        self.index = index
        self.by_eval_set: dict[str, int] = {}

    def __call__(self, text: str) -> bool:
        hits = self.index.matches(text)
        for name in hits:
            self.by_eval_set[name] = self.by_eval_set.get(name, 0) + 1
        return not hits


def eval_index(enabled: bool, log: Callable[[str], None]):
    """The n-gram index of the eval sets, or None (decontamination off, or not available here)."""
    if not enabled:
        return None
    try:
        from webmill.decontamination import EvalNgramIndex
    except ImportError:
        log("decontamination: webmill.decontamination is not available; training data is NOT decontaminated")
        return None
    return EvalNgramIndex(n=13)


# ---------------------------------------------------------------- running


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise WebmillError("--device cuda: no CUDA device is available to torch here (use cpu or auto)")
    return device


def versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("webmill", "torch", "sentencepiece", "datatrove", "pyarrow", "lm-eval", "matplotlib"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return found


def run_fingerprint(spec: RunSpec, files: list[Path], tokenizer_info: dict, study: Study, device: str) -> str:
    return digest({"corpus": fingerprint_files(files), "tokenizer": tokenizer_info["fingerprint"],
                   "model": spec.model, "train": spec.train, "seed": spec.seed, "eval": dataclasses.asdict(study.eval),
                   "decontaminate": study.decontaminate, "device": device})


def run_file(out_dir: Path, spec: RunSpec) -> Path:
    return out_dir / "runs" / spec.label / f"seed-{spec.seed}.json"


def run_study(study: Study, output: str | os.PathLike = "reports", device: str = "auto", progress: bool = True,
              log: Callable[[str], None] | None = None) -> Path:
    """Run every (label, seed) not already cached, then write results.json and the report. Returns the folder."""
    from webmill.ablation import report

    log = log or (lambda message: print(f"webmill: {message}", flush=True))
    device = resolve_device(device)
    files = check_corpora(study)
    out_dir = Path(output) / study.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(study.seeds) < MIN_SEEDS:
        warnings.warn(f"study '{study.name}' uses {len(study.seeds)} seed(s); with fewer than {MIN_SEEDS} the "
                      f"report cannot tell a real difference from seed noise", stacklevel=2)
        log(f"warning: only {len(study.seeds)} seed(s); differences cannot be told from noise reliably")

    tokenizer, tokenizer_info = prepare_tokenizer(study, files, out_dir, log)
    index = eval_index(study.decontaminate, log)
    runs = plan_runs(study)
    results = []
    for spec in runs:
        fingerprint = run_fingerprint(spec, files[spec.label], tokenizer_info, study, device)
        cache = run_file(out_dir, spec)
        prefix = f"run {spec.index}/{len(runs)} '{spec.label}' seed {spec.seed}"
        if cache.is_file():
            cached = json.loads(cache.read_text())
            if cached.get("fingerprint") == fingerprint:
                log(f"{prefix}: done earlier, reusing {cache}")
                results.append(cached["result"])
                continue
            log(f"{prefix}: settings or corpus changed since the cached run; training again")
        log(f"{prefix}: training")
        result = train_one(spec, study, tokenizer, index, device, progress, cache.with_suffix(""))
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".json.partial")
        partial.write_text(json.dumps({"fingerprint": fingerprint, "result": result}, indent=1))
        partial.replace(cache)  # a run is cached only once complete
        shutil.rmtree(cache.with_suffix(""), ignore_errors=True)  # its checkpoint is not needed any more
        bpb = result["eval"].get("bpb", {}).get("macro")
        log(f"{prefix}: final loss {result['final_loss']:.3f}, macro bpb {'–' if bpb is None else f'{bpb:.3f}'}, "
            f"{result['tokens_per_s']:.0f} tokens/s, {result['wall_s']:.0f} s train + {result['eval_wall_s']:.0f} s eval")
        results.append(result)

    document = {
        "format": RESULTS_FORMAT,
        "study": study.name,
        "description": study.description,
        "study_file": str(study.path),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kind": study.kind,
        "labels": study.labels,
        "seeds": study.seeds,
        "device": device,
        "config": study_config(study, tokenizer_info),
        "tokenizer": tokenizer_info,
        "decontaminated": index is not None,
        "decontamination": {"requested": study.decontaminate, "applied": index is not None,
                            "index": type(index).__name__ if index is not None else None},
        "versions": versions(),
        "runs": results,
    }
    document["summary"] = report.summarise(document)
    document["comparisons"] = report.compare(document["summary"])
    partial = out_dir / "results.json.partial"
    partial.write_text(json.dumps(document, indent=1))
    partial.replace(out_dir / "results.json")
    report.write_report(out_dir)
    return out_dir


def study_config(study: Study, tokenizer_info: dict) -> dict:
    """The resolved settings of every label (model and training as used), for the report's setup section."""
    per_label = {}
    for label in study.labels:
        spec = next(s for s in plan_runs(study) if s.label == label)
        per_label[label] = {
            "corpus": spec.paths,
            "model": dataclasses.asdict(model_config(spec.model, tokenizer_info["vocab_size"])),
            "preset": spec.model["preset"],
            "train": {k: v for k, v in dataclasses.asdict(train_config(spec.train, 0, "cpu")).items()
                      if k not in ("seed", "device")},
        }
    return {"labels": per_label, "eval": dataclasses.asdict(study.eval), "seeds": study.seeds,
            "tokenizer": study.tokenizer if study.tokenizer == "byte" else {"bpe": dataclasses.asdict(study.tokenizer)},
            "decontaminate": study.decontaminate}


def train_one(spec: RunSpec, study: Study, tokenizer, index, device: str, progress: bool, run_dir: Path) -> dict:
    """Train and evaluate one (label, seed); returns everything results.json keeps of it."""
    from webmill.ablation.data import pack_corpus
    from webmill.ablation.evaluate import EvalSuiteConfig, evaluate_model
    from webmill.ablation.model import GPT
    from webmill.ablation.train import set_seed, train

    mconfig = model_config(spec.model, tokenizer.vocab_size)
    tconfig = train_config(spec.train, spec.seed, device)
    keep = Decontaminator(index) if index is not None else None
    corpus = pack_corpus(spec.paths, tokenizer, tconfig.budget_tokens, mconfig.block_size, spec.seed, keep=keep)
    set_seed(spec.seed)
    model = GPT(mconfig)
    checkpoints = prepare_checkpoints(run_dir, spec, tokenizer, tconfig) if tconfig.checkpoint_every else None
    outcome = train(model, corpus, tconfig, out_dir=checkpoints, progress=progress)
    started = time.perf_counter()
    scores = evaluate_model(model, tokenizer, EvalSuiteConfig(**dataclasses.asdict(study.eval)), device=device)
    eval_wall = time.perf_counter() - started
    losses = [[int(step), int(tokens), float(loss)] for step, tokens, loss in outcome.losses]
    return {
        "label": spec.label,
        "seed": spec.seed,
        "corpus": {"paths": spec.paths, "documents": corpus.documents, "corpus_tokens": corpus.corpus_tokens,
                   "budget_tokens": corpus.budget_tokens, "epochs": float(corpus.epochs),
                   "skipped_documents": int(getattr(corpus, "skipped_documents", 0)),
                   "contaminated_by": dict(keep.by_eval_set) if keep is not None else None},
        "model": {"config": dataclasses.asdict(mconfig), "parameters": int(model.num_parameters())},
        "train": {k: v for k, v in dataclasses.asdict(tconfig).items()},
        "losses": losses,
        "final_loss": _tail_mean([loss for _, _, loss in losses]),
        "evals_during_training": [[int(step), dict(values)] for step, values in outcome.evals],
        "eval": scores,
        "steps": int(outcome.steps),
        "tokens_per_s": float(outcome.tokens_per_s),
        "wall_s": float(outcome.wall_s),
        "eval_wall_s": eval_wall,
    }


def prepare_checkpoints(run_dir: Path, spec: RunSpec, tokenizer, tconfig) -> Path:
    """With checkpoint_every set, an interrupted run continues from its last checkpoint instead of step 0 —
    unless the checkpoint was written with other training settings: then it is removed and the run starts over."""
    settings = {k: v for k, v in dataclasses.asdict(tconfig).items() if k not in ("eval_every", "checkpoint_every",
                                                                                    "log_every")}
    expected = digest({"paths": spec.paths, "model": spec.model, "tokenizer": tokenizer.name, "train": settings})
    marker = run_dir / "settings.sha"
    if run_dir.exists() and (not marker.is_file() or marker.read_text() != expected):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(expected)
    return run_dir


def _tail_mean(values: list[float], fraction: float = 0.05) -> float:
    """Mean of the last 5 % of the loss curve: one step's loss is too noisy to compare runs by."""
    if not values:
        return float("nan")
    tail = values[-max(1, int(len(values) * fraction)):]
    return sum(tail) / len(tail)


def describe_plan(study: Study, device: str) -> str:
    """--dry-run: what would be trained, without training (corpora are checked, models are built)."""
    from webmill.ablation.model import GPT

    files = check_corpora(study)
    vocab = 257 if study.tokenizer == "byte" else study.tokenizer.vocab_size
    lines = [f"study '{study.name}' ({study.kind}): {len(study.labels)} label(s) x {len(study.seeds)} seed(s) "
             f"= {len(study.labels) * len(study.seeds)} runs on {device}",
             f"tokenizer: {'byte (257 ids)' if vocab == 257 else f'BPE, {vocab} pieces, trained once on all corpora'}",
             f"seeds: {study.seeds}; decontaminate: {study.decontaminate}",
             f"eval: {dataclasses.asdict(study.eval)}"]
    for label in study.labels:
        spec = next(s for s in plan_runs(study) if s.label == label)
        mconfig = model_config(spec.model, vocab)
        tconfig = train_config(spec.train, 0, device)
        size = sum(f.stat().st_size for f in files[label])
        params = GPT(mconfig).num_parameters()
        overrides = {k: v for k, v in spec.model.items() if k != "preset"}
        model = spec.model["preset"] + (f" {overrides}" if overrides else "")
        lines.append(f"  {label}: {len(files[label])} file(s), {size / 1e6:.1f} MB; {model}, {params / 1e6:.2f}M params; {tconfig.budget_tokens:,} tokens, "
                     f"batch {tconfig.batch_size} x {mconfig.block_size}, lr {tconfig.lr}, {tconfig.trainer}")
    return "\n".join(lines)
