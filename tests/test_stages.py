"""webmill's own steps on real inputs: extraction guards, language ID, line corrections."""

import gzip
import time

import pytest
from datatrove.data import Document

from conftest import SAMPLES
from webmill.stages.archive_reader import ArchiveReader
from webmill.stages.extract import Extract, ExtractParams
from webmill.stages.language import LanguageID, LanguageParams
from webmill.stages.refinedweb_lines import RefinedWebLines, RefinedWebLinesParams


def counts(step):
    return {k: int(v.total) for k, v in step.stats.stats.items()}


def html_doc(html: str, url: str = "http://example.org/") -> Document:
    return Document(text=html, id=url, metadata={"url": url, "content_kind": "html"})


@pytest.fixture(scope="module")
def sample_pages():
    reader = ArchiveReader(str(SAMPLES / "warc"))
    return list(reader.read_file("pages-0000.warc.gz"))[:40]


def test_extract_guards_cost_one_page_each_and_the_run_goes_on(html_page):
    slow = "<html><body>" + "".join(f"<div><p>Sentence {i} is here with some words.</p></div>" for i in range(20000))
    docs = [
        html_doc(html_page("first").decode(), "http://example.org/1"),
        html_doc(slow + "</body></html>", "http://example.org/slow"),
        html_doc("<html><body>" + "<p>big</p>" * 600_000 + "</body></html>", "http://example.org/huge"),
        html_doc("<html><body><script>var x = 1;</script></body></html>", "http://example.org/empty"),
        html_doc(html_page("last").decode(), "http://example.org/2"),
    ]
    step = Extract(ExtractParams(timeout_s=0.3, max_html_bytes=5_000_000))
    started = time.perf_counter()
    out = list(step.run(iter(docs)))
    assert time.perf_counter() - started < 30  # the slow page is cut at its limit, not run for seconds
    assert [d.id for d in out] == ["http://example.org/1", "http://example.org/2"]
    assert "committee met again" in out[0].text and "<p>" not in out[0].text
    c = counts(step)
    assert c["dropped_timeout"] == 1 and c["dropped_html_too_large"] == 1 and c["dropped_no_text_extracted"] == 1
    assert c["total"] == c["forwarded"] + c["dropped"] == 5


def test_extract_sandbox_fallback_off_the_main_thread(html_page):
    import threading

    result = {}

    def work():
        step = Extract(ExtractParams(timeout_s=5))
        result["docs"] = list(step.run(iter([html_doc(html_page("threaded").decode())])))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert "threaded paragraph 0" in result["docs"][0].text


def test_extract_on_real_pages(sample_pages):
    step = Extract(ExtractParams())
    out = list(step.run(iter(sample_pages)))
    assert len(out) >= 0.9 * len(sample_pages)
    assert all("<div" not in d.text and d.metadata["html_bytes"] > len(d.text) for d in out)


def test_language_id_labels_real_pages_and_filters(sample_pages):
    extracted = list(Extract(ExtractParams()).run(iter(sample_pages)))
    step = LanguageID(LanguageParams(languages=["de"], min_score=0.5))
    kept = list(step.run(iter(extracted)))
    assert kept and all(d.metadata["language"] == "de" and d.metadata["language_score"] >= 0.5 for d in kept)
    c = counts(step)
    assert c["total"] == len(extracted) == c["forwarded"] + c["dropped_language_not_allowed"] + c.get("dropped_language_score_too_low", 0)
    # the mostly German sample still has other languages in it
    assert c["dropped_language_not_allowed"] > 0


@pytest.mark.parametrize("text,language", [
    ("The committee met again on Tuesday to discuss the budget for the next year.", "en"),
    ("Der Ausschuss traf sich am Dienstag erneut, um den Haushalt zu besprechen.", "de"),
    ("Le comité s'est de nouveau réuni mardi pour discuter du budget.", "fr"),
    ("Комитет снова собрался во вторник, чтобы обсудить бюджет.", "ru"),
    ("委员会星期二再次开会讨论明年的预算。", "zh"),
])
def test_language_id_is_offline_and_right(text, language):
    step = LanguageID(LanguageParams())
    assert step.predict(text)[0] == language


def test_missing_lid_model_is_a_clear_error(tmp_path):
    from webmill.errors import WebmillError

    with pytest.raises(WebmillError, match="not found"):
        LanguageID(LanguageParams(model=str(tmp_path / "nope.ftz")))


def test_refinedweb_line_corrections():
    article = "\n".join(f"Paragraph {i} explains in plain words how the new rail line will change the daily commute "
                        f"for thousands of people in the region." for i in range(12))
    debris = "\n".join(["SHARE THIS ARTICLE NOW", "12 likes", "2,345", "Read more", "Sign in to comment"])
    step = RefinedWebLines(RefinedWebLinesParams())
    text, removed, share = step.correct(article + "\n" + debris)
    assert text == article and removed == 5 and 0 < share < 0.05
    assert step.correct(article)[1] == 0
    docs = [Document(text=article + "\n" + debris, id="a"), Document(text="Home\nMenu\n" + debris + "\nA short note.", id="b")]
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == ["a"] and out[0].metadata["lines_removed"] == 5
    c = counts(step)
    assert c["changed"] == 1 and c["dropped_too_many_lines_removed"] == 1


def test_url_filter_is_offline_and_parses_its_lists_once_per_process():
    from webmill.stages.url_filter import OfflineURLFilter

    first, second = OfflineURLFilter(), OfflineURLFilter()
    verdicts = [first.filter(Document(text="x", id=u, metadata={"url": u}))
                for u in ("http://example.org/news", "http://pornhub.com/video")]
    assert verdicts == [True, (False, "domain")]
    assert second.filter(Document(text="x", id="n", metadata={"url": "http://example.org/"})) is True
    assert second.block_listed_domains is first.block_listed_domains  # parsed once, shared by later tasks
    assert OfflineURLFilter(extra_domains=["example.org"]).filter(
        Document(text="x", id="e", metadata={"url": "http://example.org/"})) == (False, "domain")


def test_time_limit_survives_a_swallowed_alarm():
    """An alarm raised inside a finaliser is lost; the repeating alarm still ends the work."""
    from webmill.stages.extract import ExtractionTimeout, time_limit

    def stubborn(seconds):
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                pass
        except BaseException:
            pass  # the first alarm is swallowed here
        while time.monotonic() < end:
            pass

    started = time.monotonic()
    with pytest.raises(ExtractionTimeout):
        with time_limit(0.1):
            stubborn(3)
    assert time.monotonic() - started < 1.5
    with time_limit(1.0):  # and the timer is disarmed afterwards: nothing fires later
        time.sleep(0.3)
