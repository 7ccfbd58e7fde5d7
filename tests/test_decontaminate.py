"""Decontamination: a document quoting 13 words of an evaluation item is found (and dropped or flagged),
a clean one is kept, and the matches are counted per evaluation set."""

import gzip
import importlib.util
import json

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from conftest import assert_accounts_add_up, run, stage, write_recipe
from webmill.decontamination import EvalNgramIndex, normalized_words
from webmill.errors import WebmillError
from webmill.stages.decontaminate import Decontaminate, DecontaminateParams, counter_name

# real items: PIQA (validation), BLiMP (existential_there_quantifiers_1), ARC-Easy, LAMBADA
PIQA = ("Question: How do I ready a guinea pig cage for it's new occupants? Provide the guinea pig with a cage full "
        "of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water "
        "bottle and a food dish.")
BLIMP = "There was a documentary about music irritating Allison."
ARC = ("Question: Which factor will most likely cause a person to develop a fever? a leg muscle relaxing after "
       "exercise / a bacterial population in the bloodstream / several viral particles on the skin")
LAMBADA = ("In my palm is a clear stone, and inside it is a small ivory statuette. A guardian angel. \"Figured if "
           "you're going to be out at night getting hit by cars, you might as well have some backup.\" I look at "
           "him, feeling stunned. Like this is some sort of sign.")
EVAL_TEXTS = [("piqa", PIQA), ("blimp/existential_there_quantifiers_1", BLIMP), ("arc_easy", ARC),
              ("lambada_openai", LAMBADA), ("piqa", "Question: dresser")]

WEB_PAGE = ("Spring cleaning for small pets. Once a week, empty the cage and wipe it down. Provide the guinea pig "
            "with a cage full of a few inches of bedding made of ripped paper strips, you will also need to "
            "supply it with a water bottle. Guinea pigs like hay more than anything else.")
CLEAN_PAGE = ("Guinea pigs need a roomy cage, fresh hay every day and a bottle of water. Bedding made from paper "
              "is cheap, soft and absorbs smells; change it at least once a week. A food dish that cannot tip "
              "over keeps pellets clean.")


@pytest.fixture(scope="module")
def index():
    return EvalNgramIndex(13, texts=EVAL_TEXTS)


def test_words_are_normalised():
    assert normalized_words("It's a DOG-eat-dog world, (isn't it?)") == ["it", "s", "a", "dog", "eat", "dog",
                                                                          "world", "isn", "t", "it"]


def test_thirteen_shared_words_match_and_case_punctuation_do_not_matter(index):
    assert index.matches(WEB_PAGE) == ["piqa"]
    shouting = "PROVIDE THE GUINEA-PIG WITH A CAGE... FULL OF A FEW INCHES OF BEDDING!!! (made of ripped)"
    assert index.matches(shouting) == ["piqa"]
    assert index.matches(CLEAN_PAGE) == []
    twelve = "the guinea pig with a cage full of a few inches of"  # one word short of an n-gram
    assert len(normalized_words(twelve)) == 12 and index.matches(twelve) == []


def test_short_eval_texts_are_used_whole_above_the_minimum(index):
    assert index.stats["blimp/existential_there_quantifiers_1"]["short_texts"] == 1
    assert index.matches(f"My teacher said: {BLIMP} Nobody laughed.") == ["blimp/existential_there_quantifiers_1"]
    assert index.matches("There was a documentary about music.") == []  # part of the short sentence only
    assert index.stats["piqa"]["too_short"] == 1  # "Question: dresser" (2 words) is not indexed
    assert index.matches("Question: dresser") == []


def test_match_counts_per_set_and_shared_ngrams(index):
    counts = index.match_counts(f"{WEB_PAGE} {LAMBADA}")
    assert set(counts) == {"piqa", "lambada_openai"}
    assert counts["lambada_openai"] == len(normalized_words(LAMBADA)) - 13 + 1
    both = EvalNgramIndex(13, texts=[("a", PIQA), ("b", PIQA)])
    assert both.matches(WEB_PAGE) == ["a", "b"]


def test_set_selection_by_name_or_family(index):
    only = EvalNgramIndex(13, ["blimp", "arc"], texts=EVAL_TEXTS)
    assert only.names == ["arc_easy", "blimp/existential_there_quantifiers_1"]
    assert only.matches(WEB_PAGE) == []
    with pytest.raises(WebmillError, match="unknown evaluation set 'hellaswag'.*available: arc_easy"):
        EvalNgramIndex(13, ["hellaswag"], texts=EVAL_TEXTS)


def test_stage_drops_or_flags_and_counts_per_set(index):
    docs = [Document(text=WEB_PAGE, id="web"), Document(text=CLEAN_PAGE, id="clean"),
            Document(text=f"Quiz night! {ARC} Answer below.", id="quiz")]
    dropper = Decontaminate(DecontaminateParams(action="drop"), index=index)
    kept = list(dropper.run(iter(docs)))
    assert [d.id for d in kept] == ["clean"]
    counters = {k: v.total for k, v in dropper.stats.stats.items()}
    assert counters["dropped_contaminated"] == 2 and counters["forwarded"] == 1
    assert counters["matched_piqa"] == 1 and counters["matched_arc_easy"] == 1

    flagger = Decontaminate(DecontaminateParams(action="flag"), index=index)
    flagged = list(flagger.run(iter(Document(text=d.text, id=d.id) for d in docs)))
    assert [d.id for d in flagged] == ["web", "clean", "quiz"]
    assert [d.metadata.get("contaminated_with") for d in flagged] == [["piqa"], None, ["arc_easy"]]


needs_shipped_sets = pytest.mark.skipif(importlib.util.find_spec("webmill.evalsets") is None,
                                        reason="webmill.evalsets is not installed in this checkout")


@needs_shipped_sets
def test_shipped_eval_sets_find_piqa_and_blimp_text_in_a_recipe(tmp_path):
    from webmill.evalsets import iter_eval_texts

    texts = {}
    for name, text in iter_eval_texts():
        words = normalized_words(text)
        family = name.split("/")[0].split("_")[0]
        if family in ("piqa", "blimp") and family not in texts and len(words) >= (13 if family == "piqa" else 8):
            texts[family] = (name, text)
    assert set(texts) == {"piqa", "blimp"}
    docs = [{"id": "piqa", "text": f"Life hacks for busy people. {texts['piqa'][1]} Thanks for reading!"},
            {"id": "blimp", "text": f"A sentence from a grammar test: {texts['blimp'][1]} Odd, isn't it?"},
            {"id": "clean", "text": CLEAN_PAGE}]
    source = tmp_path / "docs.jsonl.gz"
    with gzip.open(source, "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    recipe = write_recipe(tmp_path / "decon.yaml", ["decontaminate"], [source], tmp_path / "out")
    report = run(recipe)
    assert_accounts_add_up(report)
    row = stage(report, "decontaminate")
    assert row["read"] == 3 and row["kept"] == 1 and row["dropped"] == {"contaminated": 2}
    assert row["counters"][counter_name(texts["piqa"][0])] >= 1
    assert any(k.startswith("matched_blimp") for k in row["counters"])
    assert pq.read_table(tmp_path / "out" / "data").column("id").to_pylist() == ["clean"]


def test_missing_shipped_sets_or_unknown_set_is_a_clear_error():
    if importlib.util.find_spec("webmill.evalsets") is None:
        with pytest.raises(WebmillError, match="evaluation sets are not available"):
            EvalNgramIndex(13)
    else:
        with pytest.raises(WebmillError, match="unknown evaluation set 'no_such_benchmark'"):
            Decontaminate(DecontaminateParams(sets=["no_such_benchmark"]))

