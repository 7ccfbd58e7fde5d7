"""CorpusFacts → a Hugging Face dataset card: a YAML header (licence, languages, size, `configs` that
make `datasets.load_dataset(<corpus folder>)` work) and a Markdown body with tables and PNG plots.
Every number comes from the run's statistics or its data; where a number is unknown the card says so."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import yaml

from webmill.cards import plots
from webmill.cards.collect import CorpusFacts, language_codes
from webmill.errors import WebmillError

ASSETS = "card_assets"
SIZE_BUCKETS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"),
                (1_000_000_000_000, "100B<n<1T")]
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+\-]*$")
KNOWN_STATS_KEYS = {"recipe", "tasks", "wall_time_s", "documents_in", "documents_out", "stages", "tokens_out",
                    "tokenizer"}
COLUMN_TITLES = {
    "language_score": "fastText language score",
    "perplexity": "KenLM perplexity",
    "ccnet_bucket": "CCNet perplexity bucket",
    "minhash_cluster_size": "near-duplicate cluster size (documents in the cluster each kept document stands for)",
    "lines_removed": "lines removed by the RefinedWeb line corrections",
    "html_bytes": "HTML size (bytes)",
    "source": "source corpus",
    "epoch": "pass over its source (documents of a repeated source have epoch 2, 3, …)",
}
HEADINGS = {"language": "Languages", "source": "Sources", "ccnet_bucket": "Perplexity buckets",
            "minhash_cluster_size": "Near-duplicate clusters"}
TOP_DOMAINS = 25


def size_category(documents: int) -> str:
    for bound, label in SIZE_BUCKETS:
        if documents < bound:
            return label
    return "n>1T"


def check_license(license_id: str) -> str:
    if not LICENSE_ID.match(license_id or ""):
        raise WebmillError(f"licence {license_id!r} is not a Hub licence identifier (lower case, e.g. odc-by, "
                           "cc-by-4.0, apache-2.0, or other)")
    return license_id


def configs(facts: CorpusFacts) -> list[dict]:
    """One config for data/*.parquet; with data/<lang>/ folders, one per folder plus a default one
    holding every folder."""
    parts = facts.partitions
    if not parts:
        return []
    if list(parts) == [""]:
        return [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}]
    everything = (["data/*.parquet"] if "" in parts else []) + ["data/*/*.parquet"]
    result = [{"config_name": "all", "default": True,
               "data_files": [{"split": "train", "path": everything if len(everything) > 1 else everything[0]}]}]
    result += [{"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}]}
               for name in parts if name]
    return result


def header(facts: CorpusFacts, license_id: str) -> dict:
    meta: dict = {"license": check_license(license_id)}
    codes = language_codes(facts)
    if codes:
        meta["language"] = codes
    meta["size_categories"] = [size_category(facts.documents)]
    meta["task_categories"] = ["text-generation"]
    meta["pretty_name"] = _name(facts)
    meta["tags"] = ["webmill", "web-crawl"]
    found = configs(facts)
    if found:
        meta["configs"] = found
    return meta


def _name(facts: CorpusFacts) -> str:
    return str(facts.stats.get("recipe") or facts.root.resolve().name)


def _cell(value) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, float):
        text = plots.number(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
        text = text if len(text) <= 120 else text[:119] + "…"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return ""


class CardWriter:
    def __init__(self, facts: CorpusFacts, out: Path, with_plots: bool):
        self.facts, self.out, self.with_plots = facts, out, with_plots
        self.sections: list[str] = []

    def plot(self, name: str, draw, *args, **kwargs) -> str:
        """Draw into card_assets/<name>.png and return the Markdown image link ('' without plots)."""
        if not self.with_plots:
            return ""
        draw(*args, path=self.out / ASSETS / f"{name}.png", **kwargs)
        return f"\n![{name}]({ASSETS}/{name}.png)\n"

    def add(self, title: str, *parts: str) -> None:
        self.sections.append("\n".join([f"## {title}", ""] + [p for p in parts if p is not None]).rstrip())

    def render(self, license_id: str) -> str:
        facts = self.facts
        meta = header(facts, license_id)
        self.summary()
        self.funnel()
        self.recipe()
        self.categories()
        self.lengths()
        self.signals()
        self.domains()
        self.other_stats()
        self.method()
        intro = (f"# {_name(facts)}\n\nA text corpus made by webmill (recipe `{_name(facts)}`). "
                 "This card is generated by `webmill card` from the run's accounting (`stats.json`), its "
                 "recipe (`logs/recipe.json`) and the Parquet files themselves; regenerate it rather than "
                 "editing it.")
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        return f"---\n{front}---\n\n{intro}\n\n" + "\n\n".join(self.sections) + "\n"

    def summary(self) -> None:
        facts = self.facts
        rows = [["documents", facts.documents], ["characters", facts.characters],
                ["words (whitespace-separated)", facts.words]]
        tokens = _tokens_out(facts.stats)
        if tokens is not None:
            rows.append([f"tokens, {facts.stats['tokenizer']}", tokens])
        rows += [["Parquet files", len(facts.data_files)], ["size on disk", _size(facts.bytes_on_disk)]]
        codes = language_codes(facts)
        if codes:
            rows.append(["languages", ", ".join(codes[:20]) + (" …" if len(codes) > 20 else "")])
        # no wall time: it depends on the machine, and a card must be the same for the same corpus
        for key, label in (("documents_in", "records read"), ("tasks", "tasks")):
            if key in facts.stats:
                rows.append([label, facts.stats[key]])
        if facts.recipe and facts.recipe.get("limit", -1) not in (-1, None):
            rows.append(["try-out limit", f"at most {facts.recipe['limit']} documents per task"])
        usage = ("```python\nfrom datasets import load_dataset\n\n"
                 "corpus = load_dataset(\"path/to/this/folder\", split=\"train\")  # or the Hub repository id\n```")
        if len(facts.partitions) > 1 or "" not in facts.partitions and facts.partitions:
            names = ", ".join(f"`{n}`" for n in facts.partitions if n)
            usage += f"\n\nOne config per language folder ({names}); the default config `all` holds every language."
        if not facts.data_files:
            usage = "The run kept no documents: the corpus is empty."
        self.add("Summary", table(["", "value"], rows), "", usage)

    def funnel(self) -> None:
        facts, rows = self.facts, self.facts.stage_rows
        if not rows:
            return
        first = rows[0]["read"]
        extract_at = next((i for i, r in enumerate(rows) if r["stage"].split(":", 1)[-1].startswith("extract")), None)
        lines = []
        for index, row in enumerate(rows):
            dropped = sum(row.get("dropped", {}).values())
            reasons = ", ".join(f"{k} {v:,}" for k, v in row.get("dropped", {}).items())
            if row.get("changed"):
                reasons = (reasons + "; " if reasons else "") + f"{row['changed']:,} changed"
            chars = facts.stage_characters.get(row["stage"])
            if chars is not None and extract_at is not None and index < extract_at:
                chars = f"{chars:,} (HTML)"
            tokens = row.get("tokens")
            lines.append([row["stage"], row["read"], row["kept"], dropped, _percent(row["kept"], first),
                          "—" if chars is None else chars, "—" if tokens is None else tokens, reasons or "—"])
        tokenizer = facts.stats.get("tokenizer")
        note = ("Documents after each stage with the reasons of every drop (`stats.json`). Characters are those "
                "of the documents a stage kept, from datatrove's per-task statistics; — where the run's statistics "
                "do not hold them. " + (
                    "Tokens are those of the documents a stage kept, counted during the run (tokenizer: "
                    f"{tokenizer}); — before the text is extracted." if tokenizer else
                    "Tokens were not counted in this run (`output: {count_tokens: none}`)."))
        labels = ["input (records read)"] + [r["stage"] for r in rows]
        steep = first > 20 * max(1, rows[-1]["kept"])
        funnel_plot = self.plot("funnel", plots.horizontal_bars, labels, [first] + [r["kept"] for r in rows],
                                "Documents kept after each stage", "documents", log=steep)
        reasons = sorted(((f"{r['stage']}: {k}", v) for r in rows for k, v in r.get("dropped", {}).items()),
                         key=lambda kv: -kv[1])[:15]
        reasons_plot = "" if not reasons else self.plot(
            "drop_reasons", plots.horizontal_bars, [k for k, _ in reasons], [v for _, v in reasons],
            "Most frequent drop reasons", "documents dropped")
        # what stages counted besides drops: replacements (pii), matches per evaluation set (decontaminate),
        # dedup clusters, lines removed...; per-file counters of readers and writers are left out
        counted = [[row["stage"], ", ".join(f"{k} {v:,}" for k, v in row["counters"].items()
                                            if "." not in k and "/" not in k)]
                   for row in rows if row.get("counters")]
        counted = [row for row in counted if row[1]]
        counters = "" if not counted else "\n".join([
            "", "What the stages counted besides their drops (counters that stayed at zero are not recorded):", "",
            table(["stage", "counters"], counted)])
        self.add("Funnel", note, "",
                 table(["stage", "read", "kept", "dropped", "kept / input", "characters kept", "tokens kept",
                        "drop reasons"], lines),
                 counters, funnel_plot, reasons_plot)

    def recipe(self) -> None:
        recipe = self.facts.recipe
        if not recipe:
            self.add("Recipe", "This output records no stage recipe (no `logs/recipe.json`); what its `stats.json` "
                               "records (for a mixed corpus: its sources) is under *Other statistics of the run*.")
            return
        stages = [{stage.get("stage"): stage.get("params") or {}} for stage in recipe.get("stages", [])]
        parts = ["```yaml", yaml.safe_dump(stages, sort_keys=False, allow_unicode=True).rstrip(), "```"]
        inputs = [Path(p).name for p in recipe.get("input_files", [])]
        shown = ", ".join(f"`{n}`" for n in inputs[:20]) + (f" and {len(inputs) - 20} more" if len(inputs) > 20 else "")
        text = [f"{len(inputs)} input file(s): {shown}." if inputs else "",
                "", "Stages and their parameters (defaults included):", "", *parts]
        settings = {k: v for k, v in (recipe.get("output") or {}).items() if v is not None}
        if settings:
            text += ["", f"Output settings: `{json.dumps(settings, ensure_ascii=False)}`."]
        self.add("Recipe", *text)

    def categories(self) -> None:
        facts = self.facts
        order = sorted(facts.categories, key=lambda n: (n not in ("language", "source"), n))
        for name in order:
            counts = facts.categories[name]
            if name == "language" and not any(counts.documents):
                continue
            items = sorted(counts.documents.items(), key=lambda kv: (-kv[1], str(kv[0])))
            numeric = all(isinstance(k, (int, float)) or k is None for k, _ in items)
            if numeric:
                items = sorted(items, key=lambda kv: (kv[0] is None, kv[0] if kv[0] is not None else 0))
            rows = [["(none)" if key is None else key, n, _percent(n, facts.documents),
                     counts.characters.get(key, 0), _percent(counts.characters.get(key, 0), facts.characters)]
                    for key, n in items]
            title = COLUMN_TITLES.get(name, name)
            shown = items[:20]
            image = self.plot(f"{name}_values", plots.horizontal_bars,
                              ["(none)" if k is None else str(k) for k, _ in shown], [n for _, n in shown],
                              title, "documents")
            heading = HEADINGS.get(name, f"`{name}`")
            self.add(heading, f"Documents and characters by {title} (column `{name}`, every row counted).", "",
                     table([name, "documents", "share", "characters", "share of characters"], rows[:50])
                     + (f"\n\n{len(rows) - 50} more values not shown." if len(rows) > 50 else ""), image)

    def lengths(self) -> None:
        lengths = self.facts.text_lengths
        if not len(lengths):
            return
        image = self.plot("text_length", plots.histogram, lengths.astype(float), "Document length", "characters")
        self.add("Document length", _quantiles("characters per document", lengths), image)

    def signals(self) -> None:
        parts = []
        for name, values in sorted(self.facts.signals.items()):
            if not len(values) or (name in self.facts.categories and self.facts.schema.get(name) == "int"):
                continue  # integer columns with few values are shown as categories
            title = COLUMN_TITLES.get(name, name)
            parts += [f"### `{name}`: {title}", "", _quantiles(title, values),
                      self.plot(f"{name}_hist", plots.histogram, values, title, name)]
        if parts:
            self.add("Quality signals", "Every numeric column of the corpus, as a distribution over documents.", "",
                     *parts)

    def domains(self) -> None:
        facts = self.facts
        if not facts.domains:
            return
        top = facts.domains.most_common(TOP_DOMAINS)
        note = f"{len(facts.domains):,} distinct hosts (from `url`, without a leading `www.`)"
        if not facts.domains_exact:
            note += "; the corpus has more hosts than the counter keeps, so the counts of rare hosts are lower bounds"
        image = self.plot("domains", plots.horizontal_bars, [d for d, _ in top[:20]], [n for _, n in top[:20]],
                          "Most frequent domains", "documents")
        self.add("Top domains", note + ".", "",
                 table(["domain", "documents", "share"], [[d, n, _percent(n, facts.documents)] for d, n in top]), image)

    def other_stats(self) -> None:
        extra = {k: v for k, v in self.facts.stats.items() if k not in KNOWN_STATS_KEYS}
        if "stages" in self.facts.stats and not self.facts.stage_rows:
            extra["stages"] = self.facts.stats["stages"]
        if not extra:
            return
        scalars = {k: v for k, v in extra.items() if not isinstance(v, (dict, list))}
        parts = [table(["key", "value"], [[k, v] for k, v in scalars.items()]), ""] if scalars else []
        for key, value in extra.items():
            if key not in scalars:
                parts += [f"### {key}", "", generic(value), ""]
        self.add("Other statistics of the run", "Further entries of `stats.json`, as recorded.", "", *parts)

    def method(self) -> None:
        facts = self.facts
        sampled = ("every document" if facts.sample_rate >= 1 else
                   f"a uniform random sample of about {facts.sample_rate:.2%} of the documents (seeded)")
        self.add("How this card was made",
                 f"Counts (documents, characters, words, languages, categories, domains) cover every row of the "
                 f"Parquet files, read in batches. Histograms and quantiles use {sampled}. Regenerate with "
                 f"`webmill card <output folder>`.")


def _quantiles(label: str, values: np.ndarray) -> str:
    values = np.asarray(values, dtype=float)
    q = np.percentile(values, [0, 10, 50, 90, 100])
    return table(["", "min", "p10", "median", "p90", "max", "mean"],
                 [[label] + [float(v) for v in q] + [float(values.mean())]])


def generic(value) -> str:
    """Any JSON value as Markdown: a table where it has the shape of one, else a JSON block."""
    if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
        return table(["key", "value"], [[k, v] for k, v in value.items()])
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        keys = list(dict.fromkeys(k for v in value.values() for k in v))
        return table([""] + keys, [[name] + [row.get(k, "") for k in keys] for name, row in value.items()])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        return table(keys, [[row.get(k, "") for k in keys] for row in value])
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()
    return "```yaml\n" + (text if len(text) < 4000 else text[:4000] + "\n…") + "\n```"


def write_card(facts: CorpusFacts, out: Path, license_id: str = "other", with_plots: bool = True) -> Path:
    check_license(license_id)
    out.mkdir(parents=True, exist_ok=True)
    assets = out / ASSETS
    if assets.is_dir():
        shutil.rmtree(assets)  # plots of an earlier card that this one may no longer draw
    text = CardWriter(facts, out, with_plots).render(license_id)
    path = out / "README.md"
    path.write_text(text)
    return path


def _tokens_out(stats: dict) -> int | None:
    """Tokens in the corpus as the run counted them: a recipe run's last stage, or a mix's written total."""
    if not stats.get("tokenizer"):
        return None
    if stats.get("kind") == "mix":
        return (stats.get("total_tokens") or {}).get("written")
    return stats.get("tokens_out")
