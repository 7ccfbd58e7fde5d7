"""Multilingual corpora: line-level LID (OSCAR-like), routing by language, per-language quality rules.

Real text: the Universal Declaration of Human Rights in ten languages (tests/data/udhr) and the Common
Crawl excerpt among the samples (mostly Chinese and Russian sites)."""

import hashlib
import json

import duckdb
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

import yaml

from conftest import REPO, SAMPLES, assert_accounts_add_up, run, stage
from webmill.parquet_output import language_folder
from webmill.stages.line_language import LineLanguageID, LineLanguageParams
from webmill.stages.quality import (
    GopherQualityParams,
    GopherRepetitionParams,
    ScriptCharTokenizer,
    build_gopher_quality,
    build_gopher_repetition,
)
from webmill.stages.registry import BuildContext

UDHR = REPO / "tests" / "data" / "udhr"
LANGUAGES = {"en": "en", "de": "de", "fr": "fr", "ru": "ru", "zh-Hans": "zh", "ja": "ja", "ar": "ar", "hi": "hi"}


def udhr(code: str) -> str:
    return (UDHR / f"{code}.txt").read_text(encoding="utf-8")


def long_lines(code: str, start: int, count: int) -> list[str]:
    """`count` consecutive lines of at least 100 characters (those line-level LID identifies)."""
    return [line for line in udhr(code).splitlines() if len(line) >= 100][start:start + count]


def mixed(major: str, minor: str, n_major: int = 8, n_minor: int = 3) -> str:
    # interleaved, as a bilingual page: the minority language's lines sit between the majority's
    lines = long_lines(major, 0, n_major)
    for i, line in enumerate(long_lines(minor, 0, n_minor)):
        lines.insert(2 + 3 * i, line)
    return "\n".join(lines)


def routed_recipe(path, stages, inputs, output, tasks: int = 1):
    recipe = {"name": path.stem, "input": {"paths": [str(p) for p in inputs]},
              "output": {"dir": str(output), "route_by_language": True},
              "executor": {"kind": "local", "tasks": tasks, "workers": tasks}, "stages": stages}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def write_jsonl(path, docs):
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def udhr_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("udhr_input")
    singles = [{"id": f"udhr-{code}", "text": udhr(code)} for code in LANGUAGES]
    mixes = [{"id": "mix-en-de", "text": mixed("en", "de")}, {"id": "mix-ru-fr", "text": mixed("ru", "fr")},
             {"id": "too-short", "text": "Short line.\nAnother one.\n"}]
    return [write_jsonl(folder / "a.jsonl", singles[:4] + mixes[:1]),
            write_jsonl(folder / "b.jsonl", singles[4:] + mixes[1:])]


def run_routed(tmp_path, inputs, tasks):
    recipe = routed_recipe(tmp_path / f"oscar_like_{tasks}.yaml", [{"line_language": {"min_line_chars": 100}}],
                           inputs, tmp_path / f"out_{tasks}", tasks=tasks)
    return run(recipe), tmp_path / f"out_{tasks}"


def test_udhr_documents_land_in_their_language_folders(tmp_path, udhr_inputs):
    report, out = run_routed(tmp_path, udhr_inputs, tasks=1)
    assert_accounts_add_up(report)
    lid = stage(report, "line_language")
    assert lid["read"] == 11 and lid["kept"] == 10 and lid["dropped"] == {"no_lines_left": 1}
    assert lid["counters"]["lines_removed_short"] > 0 and lid["counters"]["lines_removed_other_language"] == 6
    writer = report["stages"][-1]["counters"]
    assert {k: v for k, v in writer.items() if k.startswith("language_")} == {
        "language_en": 2, "language_ru": 2, "language_de": 1, "language_fr": 1, "language_zh": 1,
        "language_ja": 1, "language_ar": 1, "language_hi": 1}

    folders = sorted(p.name for p in (out / "data").iterdir())
    assert folders == ["ar", "de", "en", "fr", "hi", "ja", "ru", "zh"]  # no partial folder left behind
    assert sorted(p.name for p in (out / "data" / "en").iterdir()) == ["000_a.jsonl.parquet"]
    for code, lang in LANGUAGES.items():
        ids = pq.read_table(out / "data" / lang, columns=["id"]).column("id").to_pylist()
        assert f"udhr-{code}" in ids
    rows = duckdb.sql(f"SELECT language, count(*) FROM read_parquet('{out}/data/*/*.parquet') "
                      "GROUP BY language ORDER BY language").fetchall()
    assert dict(rows) == {"ar": 1, "de": 1, "en": 2, "fr": 1, "hi": 1, "ja": 1, "ru": 2, "zh": 1}


def test_mixed_documents_keep_only_majority_language_lines(tmp_path, udhr_inputs):
    _, out = run_routed(tmp_path, udhr_inputs, tasks=1)
    for doc_id, major, minor in (("mix-en-de", "en", "de"), ("mix-ru-fr", "ru", "fr")):
        (row,) = duckdb.sql(f"SELECT * FROM read_parquet('{out}/data/{major}/*.parquet') "
                            f"WHERE id = '{doc_id}'").fetchall()
        row = dict(zip(duckdb.sql(f"SELECT * FROM read_parquet('{out}/data/{major}/*.parquet')").columns, row))
        assert row["text"].split("\n") == long_lines(major, 0, 8)
        assert row["lid_lines_removed"] == 3 and row["language_score"] > 0.8
        shares = json.loads(row["metadata"])["language_shares"]
        assert set(shares) == {major, minor} and shares[major] > 0.6 and abs(sum(shares.values()) - 1) < 1e-3


def test_routed_output_is_identical_for_any_task_count(tmp_path, udhr_inputs):
    _, one = run_routed(tmp_path, udhr_inputs, tasks=1)
    _, two = run_routed(tmp_path, udhr_inputs, tasks=2)
    files = sorted(p.relative_to(one) for p in (one / "data").rglob("*.parquet"))
    assert files == sorted(p.relative_to(two) for p in (two / "data").rglob("*.parquet")) and len(files) == 9
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_common_crawl_excerpt_is_routed_to_chinese_and_russian(tmp_path):
    recipe = routed_recipe(tmp_path / "cc.yaml", ["extract", {"line_language": {"min_line_chars": 30}}],
                           [SAMPLES / "warc" / "CC-MAIN-2020-34-sample.warc.gz"], tmp_path / "out")
    report = run(recipe)
    assert_accounts_add_up(report)
    data = tmp_path / "out" / "data"
    assert {"zh", "ru"} <= {p.name for p in data.iterdir()}
    for lang in ("zh", "ru"):
        table = pq.read_table(data / lang / "000_CC-MAIN-2020-34-sample.warc.gz.parquet")
        assert table.num_rows >= 1 and set(table.column("language").to_pylist()) == {lang}
        assert all(url.startswith("http") for url in table.column("url").to_pylist())


def test_line_language_parameters():
    step = LineLanguageID(LineLanguageParams(min_line_chars=100))
    text = udhr("en")
    verdict = step.identify(text)
    assert verdict.language == "en" and verdict.shares == {"en": 1.0}
    assert all(len(line) >= 100 for line in verdict.text.split("\n"))
    assert verdict.removed["short"] == sum(1 for line in text.splitlines() if 0 < len(line.strip()) < 100)
    lenient = LineLanguageID(LineLanguageParams(min_line_chars=20)).identify(text)
    assert lenient.removed["short"] < verdict.removed["short"] and len(lenient.text) > len(verdict.text)
    assert LineLanguageID(LineLanguageParams(min_line_score=1.0)).identify(text).language is None


def test_route_folder_names_are_safe():
    assert language_folder("zh") == "zh" and language_folder(None) == "und" and language_folder("unknown") == "und"
    assert language_folder("../../etc") == "______etc" and language_folder("") == "und"


def gopher(per_language: bool, **kwargs):
    return build_gopher_quality(GopherQualityParams(per_language=per_language, **kwargs), BuildContext(1))


@pytest.mark.parametrize("code", ["de", "ru", "ar", "hi", "ja", "zh-Hans"])
def test_gopher_quality_uses_the_documents_language(code):
    def doc():
        return Document(text=udhr(code), id=code, metadata={"language": LANGUAGES[code]})

    assert gopher(False).filter(doc()) is not True  # English stop words and word lengths reject real prose
    assert gopher(True).filter(doc()) is True


def test_unspaced_languages_are_split_into_characters_and_unknown_ones_skip_stop_words():
    words = ScriptCharTokenizer().word_tokenize("人人生而自由，abc 12")
    assert words == ["人", "人", "生", "而", "自", "由", "，", "abc", "12"]
    step = gopher(True)
    step.filter(Document(text=udhr("es"), id="es", metadata={"language": "es"}))
    lorem = " ".join(["Lorem ipsum dolor sit amet consectetur adipiscing elit"] * 10)
    assert step.filter(Document(text=lorem, id="la", metadata={"language": "la"})) is True
    assert step.stats["stop_words_unavailable"].total == 1  # no Latin list: rule skipped, counted
    own_list = gopher(True, stop_words=["der", "und"])  # a recipe's list applies to every language
    assert own_list.filter(Document(text=udhr("ru"), id="ru", metadata={"language": "ru"})) is not True
    repetition = build_gopher_repetition(GopherRepetitionParams(per_language=True), BuildContext(1))
    assert repetition.filter(Document(text=udhr("ja"), id="ja", metadata={"language": "ja"})) is True
    assert repetition.stats["ngram_rules_skipped"].total == 1


def test_writer_routes_size_bounded_files_by_language(tmp_path):
    from webmill.parquet_output import CorpusParquetWriter, output_columns

    def docs():
        for i in range(120):
            language = ["de", "zh", None][i % 3]
            # incompressible text, so that files reach the size bound
            text = "".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest() for j in range(40))
            metadata = {"shard": "in=put.jsonl"} | ({"language": language} if language else {})
            yield Document(text=text, id=f"doc-{i:03d}", metadata=metadata)

    writer = CorpusParquetWriter(str(tmp_path), output_columns({}), max_file_bytes=40_000, row_group_rows=10,
                                 route_by_language=True)
    list(writer.run(docs(), rank=0))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert {f.split("/")[0] for f in files} == {"de", "zh", "und"} and not any((tmp_path / ".partial").iterdir())
    assert "de/001_in=put.jsonl.parquet" in files and all(f.split("/")[1][:4].rstrip("_").isdigit() for f in files)
    for folder, expected in (("de", "de"), ("zh", "zh"), ("und", None)):
        table = pq.read_table(tmp_path / folder)
        assert table.num_rows == 40 and set(table.column("language").to_pylist()) == {expected}
