"""The shipped OSCAR- and C4-like recipes, and the C4 bad-words stage, on real text."""

import gzip
import json

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from conftest import REPO, SAMPLES, assert_accounts_add_up, stage
from webmill.errors import WebmillError
from webmill.recipe import load_recipe
from webmill.runner import run_recipe
from webmill.stages.badwords import BadWordsFilter, BadWordsParams, read_lists

UDHR = REPO / "tests" / "data" / "udhr"


def english_lines(start: int, count: int) -> list[str]:
    # the declaration's non-discrimination articles name "sex", a listed word: C4 drops them (left out here)
    lines = [line for line in (UDHR / "en.txt").read_text().splitlines()
             if len(line) >= 100 and line.endswith(".") and "sex" not in line]
    assert len(lines) >= start + count
    return lines[start:start + count]


def shipped(name: str, tmp_path, inputs, **output):
    overrides = {"input": {"paths": [str(p) for p in inputs]}, "output": {"dir": str(tmp_path / name), **output},
                 "executor": {"tasks": 1, "workers": 1}}
    return load_recipe(REPO / "pipelines" / f"{name}.yaml", overrides)


@pytest.mark.parametrize("name", ["oscar", "c4"])
def test_recipes_say_what_they_reproduce_and_where_they_differ(name, tmp_path):
    header = (REPO / "pipelines" / f"{name}.yaml").read_text().split("\nname:")[0]
    assert header.startswith("# ") and "Reproduces" in header and "Differs" in header
    recipe = shipped(name, tmp_path, [SAMPLES / "warc"])
    stages = [s.spec.name for s in recipe.stages]
    if name == "oscar":
        assert recipe.output.route_by_language and "line_language" in stages
    else:
        assert stages[-3:] == ["c4_quality", "badwords", "line_dedup"] and recipe.stages[-1].params.unit == "line"


def test_c4_recipe_drops_bad_word_documents_and_keeps_clean_ones(tmp_path):
    clean = [english_lines(0, 7), english_lines(7, 7)]
    docs = [
        {"id": "clean-1", "text": "\n".join(clean[0])},
        {"id": "clean-2", "text": "\n".join(clean[1])},
        # words that contain a listed word are not that word: assessment, Scunthorpe, classic
        {"id": "near-miss", "text": "\n".join(english_lines(14, 6) + [
            "The assessment of the classic case was published by the council of Scunthorpe last year."])},
        {"id": "bad-word", "text": "\n".join(english_lines(20, 6) + [
            "The reviewer said the whole argument was bullshit and walked out of the meeting."])},
        {"id": "bad-phrase", "text": "\n".join(english_lines(26, 6) + [
            "The officers said the video showed a blow job in the back of the car, and it was removed."])},
        {"id": "copy-of-clean-1", "text": "\n".join(clean[0])},  # every line repeated: line dedup drops it
    ]
    source = tmp_path / "pages.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    recipe = shipped("c4", tmp_path, [source], exclusions=str(tmp_path / "dropped"))
    report = run_recipe(recipe, progress=False)
    assert_accounts_add_up(report)
    assert stage(report, "language")["kept"] == 6 and stage(report, "c4_quality")["kept"] == 6
    badwords = stage(report, "badwords")
    assert badwords["dropped"] == {"badwords": 2} and badwords["counters"]["badwords_en"] == 2
    assert stage(report, "line_dedup")["dropped"] == {"all_lines_duplicated": 1}

    table = pq.read_table(tmp_path / "c4" / "data")
    assert sorted(table.column("id").to_pylist()) == ["clean-1", "clean-2", "near-miss"]
    assert all(line.endswith(".") for text in table.column("text").to_pylist() for line in text.split("\n"))
    (dropped_file,) = (tmp_path / "dropped").glob("*_badwords/*.jsonl.gz")
    dropped = [json.loads(line) for line in gzip.open(dropped_file, "rt")]
    assert {(d["id"], d["metadata"]["filter_reason"], d["metadata"]["badword"]) for d in dropped} == {
        ("bad-word", "badwords", "bullshit"), ("bad-phrase", "badwords", "blow job")}


def test_oscar_recipe_reads_wet_files(tmp_path):
    recipe = shipped("oscar", tmp_path, [SAMPLES / "wet"])
    # the URL block-lists take seconds to parse and have nothing to say about this page
    recipe.stages = [s for s in recipe.stages if s.spec.name != "url_filter"]
    report = run_recipe(recipe, progress=False)
    assert_accounts_add_up(report)
    (path,) = (tmp_path / "oscar" / "data").rglob("*.parquet")
    row = pq.read_table(path).to_pylist()[0]
    assert path.parent.name == row["language"] and path.name == "000_whirlwind.warc.wet.gz.parquet"
    assert row["url"] == "https://an.wikipedia.org/wiki/Escopete" and row["lid_lines_removed"] > 0
    assert all(len(line) >= 100 for line in row["text"].split("\n"))


def check(step, text, language):
    doc = Document(text=text, id="x", metadata={"language": language} if language else {})
    return step.filter(doc), doc.metadata.get("badword")


def test_bad_words_list_follows_the_documents_language():
    step = BadWordsFilter(BadWordsParams())
    assert check(step, "Das ist doch Scheiße, sagte er.", "de") == ((False, "badwords"), "scheiße")
    assert check(step, "Das ist doch Scheiße, sagte er.", "en")[0] is True  # not on the English list
    assert check(step, "What a bullshit answer.", None)[0] == (False, "badwords")  # default_language: en
    assert check(step, "He said blow\n  job twice.", "en")[1] == "blow\n  job"  # multi-word across whitespace
    # Chinese has no spaces: entries match anywhere; 性 alone is part of everyday words (ignored)
    assert check(step, "这是一个三级片网站的介绍", "zh") == ((False, "badwords"), "三级片")
    assert check(step, "他的性格很好，人人生而自由。", "zh")[0] is True
    assert check(step, "Filipino text", "tl")[0] is True and "fil" in step.entries  # alias to the fil list
    assert check(step, "Lorem ipsum dolor sit amet.", "la")[0] is True
    assert step.stats["no_list_la"].total == 1 and step.stats["badwords_zh"].total == 1
    strict = BadWordsFilter(BadWordsParams(missing_list="drop"))
    assert check(strict, "Lorem ipsum dolor sit amet.", "la")[0] == (False, "no_badwords_list")


def test_bad_words_lists_ship_with_their_licence(tmp_path):
    lists = read_lists(REPO / "src" / "webmill" / "assets" / "wordlists" / "ldnoobw", set())
    assert len(lists) == 27 and len(lists["en"]) > 390 and "CC BY 4.0" in (
        REPO / "src" / "webmill" / "assets" / "wordlists" / "ldnoobw" / "SOURCE.md").read_text()
    with pytest.raises(WebmillError, match="not found"):
        BadWordsFilter(BadWordsParams(lists=str(tmp_path / "missing")))
