"""Train a CCNet-style language model from reference text: SentencePiece tokenizer + KenLM n-gram model.

    text files ──normalise──► training.txt ──SentencePiece (sampled)──► {lang}.sp.model
                                   │                                         │
                                   └──────────── tokenise ◄──────────────────┘
                                                     │
                         tokens.txt ──lmplz -o ORDER -S MEM --prune …──► model.arpa
                                                                             │
                                                 build_binary ──► {lang}.arpa.bin + {lang}.manifest.json

Memory stays bounded whatever the size of the text: the text is streamed to disk, SentencePiece trains
on a sample of at most `sample_sentences` paragraphs, and lmplz sorts on disk within `memory`.
Everything happens in a scratch folder inside the output folder; the model files appear only once
complete. lmplz and build_binary are KenLM's programs, built by `scripts/build_kenlm.sh`.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

from webmill.checksums import sha256_file
from webmill.errors import WebmillError
from webmill.kenlm.layout import ModelFiles
from webmill.kenlm.normalize import normalize
from webmill.kenlm.reference import describe_file, read_lines

MANIFEST_FORMAT = "webmill-kenlm-manifest/1"
MAX_ORDER = 6  # KenLM's default KENLM_MAX_ORDER, which the pip module and scripts/build_kenlm.sh use
MEMORY = re.compile(r"^\d+(\.\d+)?[%bKMGTPEZY]?$")
BUILD_HINT = "build KenLM's tools with `make kenlm-tools` (or scripts/build_kenlm.sh)"


@dataclass
class TrainConfig:
    lang: str
    order: int = 5
    vocab_size: int = 8000  # CCNet used 65536 pieces on full Wikipedia; small text needs fewer
    prune: list[int] = field(default_factory=lambda: [0, 0, 1])  # lmplz --prune: drop singleton 3+-grams
    memory: str = "1G"  # lmplz / build_binary sorting memory (-S), GNU sort syntax
    # SentencePiece input_sentence_size: paragraphs sampled to train on; its memory is ~20x their bytes
    sample_sentences: int = 100_000
    character_coverage: float = 0.9999
    binary_type: Literal["probing", "trie"] = "probing"  # probing: fastest queries; trie: smallest file
    discount_fallback: bool = False  # lmplz --discount_fallback (tiny or duplicated text)
    wikitext: bool = False  # the text is in WikiText's tokenised form: undo it first
    seed: int = 0
    threads: int = 2

    def check(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.lang):
            raise WebmillError(f"language code {self.lang!r}: use letters, digits, '-' or '_' (e.g. en)")
        if not 2 <= self.order <= MAX_ORDER:
            raise WebmillError(f"--order {self.order}: KenLM here is built for orders 2 to {MAX_ORDER}")
        if self.vocab_size < 100:
            raise WebmillError(f"--vocab-size {self.vocab_size}: use at least 100")
        if (not self.prune or len(self.prune) > self.order or any(p < 0 for p in self.prune)
                or self.prune != sorted(self.prune) or self.prune[0] != 0):
            raise WebmillError(f"--prune {' '.join(map(str, self.prune))}: one count threshold per order "
                               f"(at most {self.order}), non-decreasing, the first 0 (lmplz cannot prune unigrams)")
        if not MEMORY.match(self.memory):
            raise WebmillError(f"--memory {self.memory!r}: a size like 500M, 2G or 20%")
        if self.sample_sentences < 1 or self.threads < 1:
            raise WebmillError("--sample and --threads must be at least 1")


def find_tool(name: str) -> str:
    """A KenLM program: $WEBMILL_KENLM_BIN, then beside this Python (the virtual environment), then PATH."""
    places = [os.environ.get("WEBMILL_KENLM_BIN"), os.path.dirname(sys.executable)]
    for folder in filter(None, places):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise WebmillError(f"KenLM's `{name}` program was not found (looked in $WEBMILL_KENLM_BIN, "
                       f"{os.path.dirname(sys.executable)} and PATH); {BUILD_HINT}")


def tool_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for package in ("kenlm", "sentencepiece"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    marker = Path(find_tool("lmplz")).resolve().parent.parent / ".kenlm-tools-version"
    versions["lmplz"] = marker.read_text().strip() if marker.is_file() else "unknown"
    return versions


def write_training_text(inputs: list[str], wikitext: bool, path: Path) -> dict:
    """Normalise the reference text, one paragraph per line, streaming; return its size and hash."""
    digest, n_bytes, paragraphs = hashlib.sha256(), 0, 0
    with open(path, "w", encoding="utf-8") as out:
        for line in read_lines(inputs, wikitext=wikitext):
            text = normalize(line)
            if not text:
                continue
            data = (text + "\n").encode("utf-8")
            digest.update(data)
            n_bytes += len(data)
            paragraphs += 1
            out.write(text + "\n")
    if not paragraphs:
        raise WebmillError(f"no text in {', '.join(map(str, inputs))}")
    return {"sha256": digest.hexdigest(), "bytes": n_bytes, "paragraphs": paragraphs}


SENTENCEPIECE_TRAINER = """
import json, sys
import sentencepiece as spm
seed, options = json.loads(sys.argv[1])
spm.set_random_generator_seed(seed)
spm.SentencePieceTrainer.train(**options)
"""


def train_sentencepiece(work: Path, text_name: str, prefix: str, config: TrainConfig) -> None:
    """Train in a child process run inside `work`: the model records its input and prefix paths, which
    stay relative (the same bytes wherever it is trained), and the trainer's memory is returned."""
    options = dict(
        input=text_name, model_prefix=prefix, model_type="unigram", vocab_size=config.vocab_size,
        hard_vocab_limit=False,  # small text: fewer pieces rather than a failure
        character_coverage=config.character_coverage,
        input_sentence_size=config.sample_sentences, shuffle_input_sentence=True,
        max_sentence_length=1 << 16,  # a line is a paragraph, often longer than the 4 KB default
        normalization_rule_name="identity",  # webmill.kenlm.normalize is the only normaliser
        num_threads=config.threads, minloglevel=1,
    )
    with open(work / "sentencepiece.log", "wb") as log:
        result = subprocess.run([sys.executable, "-c", SENTENCEPIECE_TRAINER, json.dumps([config.seed, options])],
                                cwd=work, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = (work / "sentencepiece.log").read_text(errors="replace").strip().splitlines()[-8:]
        raise WebmillError(f"SentencePiece training failed with exit code {result.returncode}:\n  " + "\n  ".join(tail))


def tokenize_file(sp_model: Path, text: Path, tokens: Path, threads: int, batch: int = 2000) -> int:
    """Write each paragraph as space-separated SentencePiece pieces; return the number of pieces."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    count = 0
    with open(text, encoding="utf-8") as src, open(tokens, "w", encoding="utf-8") as out:
        lines: list[str] = []
        for line in src:
            lines.append(line.rstrip("\n"))
            if len(lines) == batch:
                count += _write_pieces(sp, lines, out, threads)
                lines = []
        count += _write_pieces(sp, lines, out, threads)
    return count


def _write_pieces(sp, lines: list[str], out, threads: int) -> int:
    if not lines:
        return 0
    encoded = sp.encode(lines, out_type=str, num_threads=threads)
    out.writelines(" ".join(pieces) + "\n" for pieces in encoded)
    return sum(len(pieces) for pieces in encoded)


def run_tool(args: list[str], log: Path, what: str) -> None:
    with open(log, "ab") as err:
        result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=err)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-8:]
        hint = ""
        if any("discount" in line.lower() for line in tail):
            hint = " (too little or duplicated text for Kneser-Ney discounts: add text or pass --discount-fallback)"
        raise WebmillError(f"{what} failed with exit code {result.returncode}{hint}:\n  " + "\n  ".join(tail))


def arpa_counts(arpa: Path) -> dict[str, int]:
    """The n-gram counts from the ARPA header."""
    counts = {}
    with open(arpa, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("ngram "):
                order, count = line[6:].strip().split("=")
                counts[order] = int(count)
            elif line.startswith("\\1-grams:"):
                break
    return counts


def train_model(inputs: list[str | Path], out_dir: str | Path, config: TrainConfig,
                progress: Callable[[str], None] | None = None) -> dict:
    """Train and write the model files; return the manifest."""
    config.check()
    lmplz, build_binary = find_tool("lmplz"), find_tool("build_binary")
    inputs = [str(p) for p in inputs]
    if not inputs:
        raise WebmillError("no reference text given (--text FILE...)")
    say = progress or (lambda message: None)
    files = ModelFiles(Path(out_dir), config.lang)
    files.folder.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix=f".{config.lang}.train-", dir=files.folder))
    try:
        started = time.perf_counter()
        say("normalising the reference text")
        training_text = write_training_text(inputs, config.wikitext, work / "training.txt")
        timings["normalize"] = time.perf_counter() - started

        step = time.perf_counter()
        say(f"training SentencePiece ({config.vocab_size} pieces)")
        train_sentencepiece(work, "training.txt", "sp", config)
        timings["sentencepiece"] = time.perf_counter() - step

        step = time.perf_counter()
        say("tokenising")
        training_text["tokens"] = tokenize_file(work / "sp.model", work / "training.txt", work / "tokens.txt",
                                                config.threads)
        (work / "training.txt").unlink()
        timings["tokenize"] = time.perf_counter() - step

        step = time.perf_counter()
        say(f"estimating the {config.order}-gram model (lmplz)")
        command = [lmplz, "-o", str(config.order), "-S", config.memory, "-T", str(work) + os.sep,
                   "--text", str(work / "tokens.txt"), "--arpa", str(work / "model.arpa"),
                   "--prune", *map(str, config.prune)]
        if config.discount_fallback:
            command.append("--discount_fallback")
        run_tool(command, work / "kenlm.log", "lmplz")
        (work / "tokens.txt").unlink()
        ngrams = arpa_counts(work / "model.arpa")
        timings["lmplz"] = time.perf_counter() - step

        step = time.perf_counter()
        say(f"building the binary model ({config.binary_type})")
        command = [build_binary, "-S", config.memory, "-T", str(work / "trie-"), config.binary_type,
                   str(work / "model.arpa"), str(work / "model.bin")]
        run_tool(command, work / "kenlm.log", "build_binary")
        timings["build_binary"] = time.perf_counter() - step
        timings["total"] = time.perf_counter() - started

        import sentencepiece as spm

        pieces = spm.SentencePieceProcessor(model_file=str(work / "sp.model")).get_piece_size()
        os.replace(work / "sp.model", files.sp_model)
        os.replace(work / "model.bin", files.binary)
        manifest = {
            "format": MANIFEST_FORMAT,
            "lang": config.lang,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "inputs": [describe_file(p) for p in inputs],
            "training_text": training_text,
            "config": asdict(config),
            "sentencepiece": {"model_type": "unigram", "vocab_size": pieces},
            "ngrams": ngrams,
            "files": {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                      for path in (files.sp_model, files.binary)},
            "tools": tool_versions(),
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
        }
        write_manifest(files.manifest, manifest)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WebmillError(f"model manifest not found: {path}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise WebmillError(f"{path}: not a webmill KenLM manifest (format {manifest.get('format')!r})")
    return manifest


def verify_model(folder: str | Path, lang: str) -> dict:
    """Check the model files against their manifest (sizes and sha256); return the manifest."""
    files = ModelFiles(Path(folder), lang).require_model()
    manifest = read_manifest(files.manifest)
    for name, expected in manifest["files"].items():
        path = files.folder / name
        if not path.is_file() or path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            raise WebmillError(f"{path} does not match {files.manifest.name}; retrain with `webmill kenlm train`")
    return manifest
