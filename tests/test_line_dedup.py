"""Line / paragraph dedup across the corpus on real text (articles and boilerplate lines of the sample
pages, see scripts/make_neardup_set.py), checked against a direct implementation of the rule."""

import gzip
import json
import random
import sys

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import REPO, assert_accounts_add_up, run, stage, write_recipe

sys.path.insert(0, str(REPO / "scripts"))
import make_neardup_set as neardup  # noqa: E402

from webmill.dedup.common import normalized_words  # noqa: E402
from webmill.dedup.lines import join_units, split_units  # noqa: E402

FILES = 3


@pytest.fixture(scope="module")
def corpus():
    """Articles wrapped in the real boilerplate lines of a few sites, some paragraphs quoted in other
    articles, a page that is nothing but boilerplate, short lines and blank lines."""
    sources = neardup.read_sources()
    rng = random.Random(3)
    blocks = [t["lines"][:8] for t in sources["templates"][:4]]
    docs = []
    for i, article in enumerate(sources["originals"][:30]):
        lines = article["text"].split("\n")
        block = blocks[i % len(blocks)]
        if i % 5 == 4:  # quotes a paragraph of an earlier article
            lines.insert(1, sources["originals"][i - 3]["text"].split("\n")[0])
        text = "\n".join(block[:3] + ["", "Home"] + lines + [""] + block[3:] + ["Home", ""])
        docs.append({"id": f"d{i:02d}", "text": text})
    docs.insert(7, {"id": "only-boilerplate", "text": "\n".join(blocks[1])})
    docs.insert(12, {"id": "paragraphs", "text": "\n\n".join(sources["originals"][2]["text"].split("\n")[:3])
                     + "\n\n" + sources["negatives"][0]["text"].replace("\n", "\n\n")})
    docs.insert(20, {"id": "paragraphs-2", "text": "\n\n".join(sources["originals"][2]["text"].split("\n")[:2])
                     + "\n\n" + sources["negatives"][1]["text"].replace("\n", "\n\n")})
    rng.shuffle(docs)
    return docs


def write_inputs(folder, docs):
    folder.mkdir()
    per = -(-len(docs) // FILES)
    for f in range(FILES):
        with gzip.open(folder / f"part-{f}.jsonl.gz", "wt") as out:
            out.writelines(json.dumps(d) + "\n" for d in docs[f * per:(f + 1) * per])


def expected(docs, unit, keep_first, min_chars):
    """The rule, directly: units compared normalised; in corpus order (file, position, unit)."""
    forms = []
    for doc in docs:
        parts, _ = split_units(doc["text"], unit)
        forms.append([" ".join(normalized_words(p)) for p in parts])
    seen, counts = {}, {}
    for d, doc_forms in enumerate(forms):
        for u, form in enumerate(doc_forms):
            if len(form) >= min_chars:
                seen.setdefault(form, (d, u))
                counts[form] = counts.get(form, 0) + 1
    result = {}
    for d, doc in enumerate(docs):
        parts, separators = split_units(doc["text"], unit)
        removed = {u for u, form in enumerate(forms[d]) if len(form) >= min_chars and counts[form] > 1
                   and (not keep_first or seen[form] != (d, u))}
        result[doc["id"]] = (join_units(parts, separators, removed), len(removed))
    return result


def run_lines(tmp, name, params, tasks=2, **kwargs):
    recipe = write_recipe(tmp / f"{name}.yaml", [{"line_dedup": params}], [tmp / "in"], tmp / name,
                          executor={"tasks": tasks, "workers": 2})
    raw = yaml.safe_load(recipe.read_text())
    raw["output"]["exclusions"] = str(tmp / name / "excluded")
    recipe.write_text(yaml.safe_dump(raw))
    report = run(recipe, **kwargs)
    assert_accounts_add_up(report)
    table = pq.read_table(tmp / name / "data")
    rows = dict(zip(table.column("id").to_pylist(), zip(table.column("text").to_pylist(),
                                                       table.column("dedup_lines_removed").to_pylist())))
    return report, rows


@pytest.mark.parametrize("unit,keep_first", [("line", True), ("line", False), ("paragraph", False)])
def test_line_dedup_matches_the_rule(tmp_path, corpus, unit, keep_first):
    write_inputs(tmp_path / "in", corpus)
    params = {"unit": unit, "keep_first": keep_first, "min_chars": 10}
    report, rows = run_lines(tmp_path, "out", params)
    want = expected(corpus, unit, keep_first, 10)
    dropped = {i for i, (text, _n) in want.items() if not text.strip()}
    assert rows == {i: v for i, v in want.items() if i not in dropped}
    reason = "all_lines_duplicated" if unit == "line" else "all_paragraphs_duplicated"
    row = stage(report, "line_dedup")
    assert row["dropped"] == ({reason: len(dropped)} if dropped else {})
    assert row["counters"]["lines_removed"] == sum(n for _t, n in want.values())
    assert row["changed"] == sum(1 for _t, n in want.values() if n)
    if unit == "line":
        assert sum(n for _t, n in want.values()) > 100  # the boilerplate lines went
        assert ("only-boilerplate" in dropped) == (not keep_first or corpus[0]["id"] != "only-boilerplate")
        kept_text = "\n".join(text for text, _n in rows.values())
        assert "\nHome\n" in kept_text  # short lines are never removed
    else:
        assert rows["paragraphs"][1] == rows["paragraphs-2"][1] == 2  # both lose the paragraphs they share


def test_identical_parquet_for_any_task_count(tmp_path, corpus):
    write_inputs(tmp_path / "in", corpus)
    outputs = []
    for tasks in (1, 3):
        run_lines(tmp_path, f"out{tasks}", {"keep_first": True}, tasks=tasks)
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / f"out{tasks}" / "data").glob("*.parquet")})
    run_lines(tmp_path, "out3", {"keep_first": True}, tasks=3, overwrite=True)
    outputs.append({p.name: p.read_bytes() for p in (tmp_path / "out3" / "data").glob("*.parquet")})
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == FILES


def test_units_split_and_join_keep_separators():
    text = "a\n\n\nb  \n \nc\n"
    parts, seps = split_units(text, "paragraph")
    assert parts == ["a", "b  ", "c\n"] and seps == ["\n\n\n", "\n \n"]
    assert join_units(parts, seps, set()) == text
    assert join_units(parts, seps, {1}) == "a\n\n\nc\n"
    parts, seps = split_units("x\ny\nz", "line")
    assert join_units(parts, seps, {0, 2}) == "y"
