"""Rebuild webmill's shipped evaluation sets (this folder) from the public source files.

    python scripts/make_eval_sets.py SOURCE_DIR

SOURCE_DIR holds the files named in SOURCE.md (text/test.txt.gz, text/tinyshakespeare.txt.gz,
text/domains/*.jsonl.gz, eval/*.jsonl.gz, eval/blimp/blimp-data.tar.gz). The output is byte-identical on
every run (gzip without time stamps, fixed order), so a rebuild shows up in `git diff` only if the rule
changed. The split rules are written down in SOURCE.md; keep the two in step.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tarfile
from pathlib import Path

from webmill.kenlm.reference import WIKITEXT_HEADING, detokenize_wikitext

HERE = Path(__file__).resolve().parent.parent / "src" / "webmill" / "assets" / "eval"
BOOKS_HELDOUT_FROM = 0.9  # the last 10 % of Shakespeare is held out, the first 90 % is for training
BOOKS_CHUNK_BYTES = 4000  # held-out Shakespeare is cut into chunks of whole speeches, about this size
PUBMEDQA_CONTEXTS = 100  # abstracts from the END of PubMedQA join the science domain
TASK_ITEMS = 500  # the first N items of each multiple-choice set
BLIMP_PAIRS = 200  # the first N pairs of each BLiMP paradigm
BLIMP_PARADIGMS = (
    "anaphor_number_agreement",
    "animate_subject_passive",
    "determiner_noun_agreement_1",
    "distractor_agreement_relational_noun",
    "existential_there_quantifiers_1",
    "irregular_past_participle_adjectives",
    "principle_A_case_1",
    "regular_plural_subject_verb_agreement_1",
    "sentential_negation_npi_licensor_present",
    "wh_questions_object_gap",
)
# domain -> the source files whose second half it holds (training samples take the first halves)
DOMAIN_FILES = {
    "web": ("redpajama-cc-2023-06-refined", "redpajama-c4-refined"),
    "science": ("arxiv", "the-pile-nih-refined"),
    "qa": ("stack_exchange", "redpajama-pile-stackexchange-refined"),
}


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(payload)
    print(f"{path.relative_to(HERE)}: {len(rows)} rows, {path.stat().st_size:,} bytes")


def interleave(groups: list[list[dict]]) -> list[dict]:
    """Round-robin over the sources, so the first N documents of a domain mix all of them."""
    out = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def wikipedia(source: Path) -> list[dict]:
    """WikiText-2 test, one document per article (title and section headings kept as lines)."""
    articles: list[tuple[str, list[str]]] = []
    with gzip.open(source / "text" / "test.txt.gz", "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if WIKITEXT_HEADING.match(line):
                heading = detokenize_wikitext(line.strip().strip("=").strip())
                if re.match(r"^ = [^=]", line):  # " = Title = " starts an article; " = = Section = = " does not
                    articles.append((heading, []))
                if heading:
                    articles[-1][1].append(heading)
            elif (text := detokenize_wikitext(line)) and articles:
                articles[-1][1].append(text)
    return [{"text": "\n".join(lines), "source": f"wikitext-2 test: {title}"} for title, lines in articles]


def books(source: Path) -> list[dict]:
    """The last 10 % of Tiny Shakespeare (from the first speech boundary past 90 %), in ~4 KB chunks."""
    with gzip.open(source / "text" / "tinyshakespeare.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read()
    cut = text.index("\n\n", int(len(text) * BOOKS_HELDOUT_FROM)) + 2
    chunks, current = [], []
    for speech in text[cut:].split("\n\n"):
        current.append(speech.strip("\n"))
        if sum(len(s) + 2 for s in current) >= BOOKS_CHUNK_BYTES:
            chunks.append("\n\n".join(current))
            current = []
    if current:
        chunks.append("\n\n".join(current))
    return [{"text": chunk, "source": f"tinyshakespeare: chunk {i} after character {cut}"}
            for i, chunk in enumerate(chunks)]


def second_halves(source: Path) -> dict[str, list[dict]]:
    """Per domain: documents at index >= ceil(n/2) of each file, minus any text that also occurs in a
    first half (some files repeat documents) and minus repeats among themselves."""
    files = {name: [row["text"] for row in read_jsonl(source / "text" / "domains" / f"{name}.jsonl.gz")]
             for names in DOMAIN_FILES.values() for name in names}
    reserved = {text for docs in files.values() for text in docs[: (len(docs) + 1) // 2]}
    seen: set[str] = set()
    domains = {}
    for domain, names in DOMAIN_FILES.items():
        groups = []
        for name in names:
            docs = files[name]
            first = (len(docs) + 1) // 2
            group = []
            for i in range(first, len(docs)):
                if docs[i] in reserved or docs[i] in seen or not docs[i].strip():
                    continue
                seen.add(docs[i])
                group.append({"text": docs[i], "source": f"{name}: document {i}"})
            groups.append(group)
        domains[domain] = interleave(groups)
    return domains


def pubmedqa_contexts(source: Path) -> list[dict]:
    """The abstract of each of the last PUBMEDQA_CONTEXTS PubMedQA items (without question or answer)."""
    rows = read_jsonl(source / "eval" / "pubmed_qa_labeled.jsonl.gz")
    start = len(rows) - PUBMEDQA_CONTEXTS
    out = []
    for i, row in enumerate(rows[start:], start):
        abstract = row["context"].split("\nQuestion:")[0].removeprefix("Context: ").strip()
        out.append({"text": abstract, "source": f"pubmed_qa_labeled: item {i}"})
    return out


def choice_sets(source: Path) -> dict[str, list[dict]]:
    """Multiple-choice sets as {context, choices, gold[, suffix]} in lm-eval's prompt conventions."""
    def load(name: str) -> list[dict]:
        return read_jsonl(source / "eval" / f"{name}.jsonl.gz")[:TASK_ITEMS]

    def question(row: dict) -> dict:  # "Question: ...\nAnswer:" + " choice"
        context = row["query"].rstrip() + "\nAnswer:"
        return {"context": context, "choices": [" " + c for c in row["choices"]], "gold": row["gold"]}

    return {
        "piqa": [question(r) for r in load("piqa")],
        "arc_easy": [question(r) for r in load("arc_easy")],
        "copa": [{"context": r["query"], "choices": [" " + c for c in r["choices"]], "gold": r["gold"]}
                 for r in load("copa")],
        # partial scoring: the shared ending is scored after each filled-in option
        "winogrande": [{"context": "", "choices": r["context_options"], "gold": r["gold"],
                        "suffix": " " + r["continuation"]} for r in load("winogrande")],
    }


def lambada(source: Path) -> list[dict]:
    return [{"context": r["context"], "target": " " + r["continuation"].strip()}
            for r in read_jsonl(source / "eval" / "lambada_openai.jsonl.gz")[:TASK_ITEMS]]


def blimp(source: Path) -> list[dict]:
    rows = []
    with tarfile.open(source / "eval" / "blimp" / "blimp-data.tar.gz") as tar:
        for paradigm in BLIMP_PARADIGMS:
            f = tar.extractfile(f"data/{paradigm}.jsonl")
            pairs = [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line.strip()]
            for pair in pairs[:BLIMP_PAIRS]:
                rows.append({"paradigm": paradigm, "good": pair["sentence_good"], "bad": pair["sentence_bad"]})
    return rows


def main(source: Path) -> None:
    heldout = {"wikipedia": wikipedia(source), "books": books(source), **second_halves(source)}
    heldout["science"] = interleave([heldout["science"], pubmedqa_contexts(source)])
    for domain, docs in heldout.items():
        write_jsonl(HERE / "heldout" / f"{domain}.jsonl.gz", docs)
    for task, items in choice_sets(source).items():
        write_jsonl(HERE / "tasks" / f"{task}.jsonl.gz", items)
    write_jsonl(HERE / "tasks" / "lambada.jsonl.gz", lambada(source))
    write_jsonl(HERE / "tasks" / "blimp.jsonl.gz", blimp(source))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
