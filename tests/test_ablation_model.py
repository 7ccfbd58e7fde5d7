"""The ablation's model, tokenizers and corpus packing, on real English text (WikiText-2, shipped)."""

from __future__ import annotations

import gzip
import itertools
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from webmill.ablation.data import balanced_sample, list_files, pack_corpus, read_texts
from webmill.ablation.model import ATTENTIONS, GPT, MLPS, POSITIONS, PRESETS, GPTConfig, alibi_slopes, build_model
from webmill.ablation.tokenizer import ByteTokenizer, load_tokenizer, train_bpe
from webmill.ablation.train import TrainConfig, train
from webmill.errors import WebmillError

from conftest import write_text_parquet

UNICODE = "Grüße aus Köln — naïve café, 東京 and emoji 🙂\n\ttabs  and   spaces \r\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- model ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pos", POSITIONS)
def test_attention_is_causal(pos):
    """Changing a later token never changes the logits of earlier positions, for every position scheme."""
    for attention in ATTENTIONS:
        model = build_model(GPTConfig(vocab_size=257, block_size=32, n_layer=2, n_head=4, n_embd=32, pos=pos,
                                      attention=attention), seed=0).eval()
        idx = torch.randint(0, 257, (2, 32), generator=torch.Generator().manual_seed(1))
        changed = idx.clone()
        changed[:, 20] = (changed[:, 20] + 1) % 257
        with torch.no_grad():
            a, _ = model(idx)
            b, _ = model(changed)
        assert torch.allclose(a[:, :20], b[:, :20], atol=1e-5)
        assert not torch.allclose(a[:, 20:], b[:, 20:], atol=1e-5)


def test_positions_matter_except_none():
    """Without positional information a token's logits depend on the set of tokens before it, not their order."""
    idx = torch.tensor([[5, 9, 5, 7, 3, 11]])
    swapped = torch.tensor([[9, 5, 5, 7, 3, 11]])  # first two swapped: the last position sees the same set
    for pos in POSITIONS:
        model = build_model(GPTConfig(vocab_size=257, block_size=8, n_layer=1, n_head=2, n_embd=16, pos=pos), 0).eval()
        with torch.no_grad():
            same = torch.allclose(model(idx)[0][0, -1], model(swapped)[0][0, -1], atol=1e-6)
        assert same == (pos == "none"), pos


def test_alibi_slopes_follow_the_paper():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert len(alibi_slopes(6)) == 6 and alibi_slopes(6).max() < 1


def test_presets_sizes_and_multi_query():
    tiny = GPT(GPTConfig.preset("cpu-tiny", 257)).num_parameters()
    small = GPT(GPTConfig.preset("gpu-small", 257)).num_parameters()
    assert 0.8e6 <= tiny <= 1.3e6
    assert 4e6 <= small <= 20e6
    mqa = GPT(GPTConfig.preset("cpu-tiny", 257, attention="mqa")).num_parameters()
    assert mqa < tiny  # one key/value head instead of n_head
    # tied embeddings: the output layer adds no parameters
    model = GPT(GPTConfig.preset("cpu-tiny", 257))
    assert model.head(torch.zeros(1, 1, 128)).shape[-1] == 257
    assert set(PRESETS) == {"cpu-tiny", "gpu-small"}


@pytest.mark.parametrize("change, message", [
    (dict(n_embd=30, n_head=4), "not divisible by n_head"),
    (dict(n_embd=24, n_head=8, pos="rotary"), "even head dimension"),
    (dict(pos="sinusoidal"), "pos 'sinusoidal'"),
    (dict(mlp="relu"), "mlp 'relu'"),
    (dict(attention="gqa"), "attention 'gqa'"),
    (dict(emb_norm="yes"), "emb_norm"),
    (dict(n_layer=0), "n_layer"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_model_config_is_a_clear_error(change, message):
    with pytest.raises(WebmillError, match=message):
        GPT(GPTConfig(**change))


def test_sequence_longer_than_block_is_refused():
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(WebmillError, match="block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_every_knob_combination_trains(articles, tmp_path):
    """All 32 combinations of pos × mlp × emb_norm × attention learn English bytes in a few steps."""
    corpus_path = write_text_parquet(tmp_path / "wiki.parquet", articles)
    corpus = pack_corpus([corpus_path], ByteTokenizer(), budget_tokens=12 * 8 * 64, block_size=64, seed=0)
    config = TrainConfig(budget_tokens=corpus.budget_tokens, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2,
                         device="cpu", seed=0)
    for pos, mlp, emb_norm, attention in itertools.product(POSITIONS, MLPS, (False, True), ATTENTIONS):
        model = build_model(GPTConfig(vocab_size=257, block_size=64, n_layer=1, n_head=4, n_embd=32, pos=pos, mlp=mlp,
                                      emb_norm=emb_norm, attention=attention), seed=0)
        losses = [loss for _, _, loss in train(model, corpus, config, progress=False).losses]
        assert len(losses) == 12
        assert losses[0] == pytest.approx(math.log(257), abs=0.1)  # starts uniform over the vocabulary
        assert sum(losses[-3:]) / 3 < losses[0] - 1.0, (pos, mlp, emb_norm, attention, losses)


# --- tokenizers ----------------------------------------------------------------------------------------

def test_byte_tokenizer_round_trip(tmp_path):
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(UNICODE)
    assert ids == list(UNICODE.encode("utf-8")) and max(ids) < 256
    assert tokenizer.decode(ids + [tokenizer.eos_id]) == UNICODE
    assert (tokenizer.vocab_size, tokenizer.eos_id) == (257, 256)
    tokenizer.save(tmp_path / "tok")
    assert load_tokenizer(tmp_path / "tok").encode(UNICODE) == ids


def test_bpe_round_trip_determinism_and_save(articles, tmp_path):
    sample = articles[:60]
    a = train_bpe(sample, vocab_size=600, seed=3)
    b = train_bpe(sample, vocab_size=600, seed=3)
    assert a.model_proto == b.model_proto and a.name == b.name
    assert a.vocab_size == 600 and a.eos_id not in a.encode(articles[70])
    for text in (articles[70], UNICODE, ""):  # unseen text, unseen characters (byte fallback), nothing
        assert a.decode(a.encode(text)) == text
    # the BPE compresses English well below one token per byte
    held_out = articles[70]
    assert len(a.encode(held_out)) < 0.5 * len(held_out.encode("utf-8"))
    a.save(tmp_path / "bpe")
    loaded = load_tokenizer(tmp_path / "bpe")
    assert loaded.name == a.name and loaded.encode(held_out) == a.encode(held_out)
    assert train_bpe(sample, vocab_size=700, seed=3).name != a.name


def test_tokenizer_errors(tmp_path):
    with pytest.raises(WebmillError, match="vocab_size"):
        train_bpe(["some text"], vocab_size=100, seed=0)
    with pytest.raises(WebmillError, match="no text"):
        train_bpe(["", "   "], vocab_size=400, seed=0)
    with pytest.raises(WebmillError, match="not a saved tokenizer"):
        load_tokenizer(tmp_path)


# --- reading and packing -------------------------------------------------------------------------------

def test_packing_joins_documents_with_eos_and_repeats_small_corpora(tmp_path):
    docs = ["first document.", "second one, a bit longer.", "", None, "third: Grüße."]
    path = write_text_parquet(tmp_path / "small.parquet", docs, row_group_size=2)
    tokenizer = ByteTokenizer()
    corpus = pack_corpus([path], tokenizer, budget_tokens=1000, block_size=10, seed=0)
    real = [d for d in docs if d]
    corpus_tokens = sum(len(d.encode()) + 1 for d in real)
    assert corpus.corpus_tokens == corpus_tokens and corpus.corpus_tokens_exact
    assert corpus.budget_tokens == 1000 and len(corpus.tokens) == 1001
    assert corpus.epochs == pytest.approx(1000 / corpus_tokens)
    assert (corpus.documents, corpus.empty_documents) == (3, 2)
    # the first pass holds every document exactly once, each followed by EOS
    first_pass = corpus.tokens[:corpus_tokens].tolist()
    assert first_pass.count(tokenizer.eos_id) == 3 and first_pass[-1] == tokenizer.eos_id
    pieces = [tokenizer.decode(p) for p in _split(first_pass, tokenizer.eos_id)]
    assert sorted(pieces) == sorted(real)
    # later passes are the same documents in another order
    second = [tokenizer.decode(p) for p in _split(corpus.tokens[corpus_tokens:2 * corpus_tokens].tolist(), 256)]
    assert sorted(second) == sorted(real)
    # batches: inputs and next-token targets, windows following each other
    batches = list(corpus.batches(4))
    assert len(batches) == 100 // 4 and batches[0].shape == (4, 11) and batches[0].dtype == torch.long
    assert torch.equal(batches[0][0, 10], batches[0][1, 0])
    assert [b.tolist() for b in corpus.batches(4, start=3)] == [b.tolist() for b in batches[3:]]


def _split(ids: list[int], eos: int) -> list[list[int]]:
    out, current = [], []
    for i in ids:
        if i == eos:
            out.append(current)
            current = []
        else:
            current.append(i)
    return out


def test_sampling_is_seeded_and_spans_every_file(articles, tmp_path):
    """A corpus bigger than the budget is sampled from all its files, the same way for the same seed."""
    folder = tmp_path / "big"
    folder.mkdir()
    paragraphs = [line for a in articles for line in a.splitlines() if len(line) > 100]
    share = len(paragraphs) // 5
    for i in range(4):
        write_text_parquet(folder / f"{i}.parquet", [f"[file{i}] " + p for p in paragraphs[i * share:(i + 1) * share]],
                      row_group_size=100)
    with gzip.open(folder / "4.jsonl.gz", "wt", encoding="utf-8") as out:
        for p in paragraphs[4 * share:]:
            out.write(json.dumps({"text": "[file4] " + p, "id": "x"}) + "\n")
    tokenizer = ByteTokenizer()
    budget = 60_000
    a = pack_corpus([folder], tokenizer, budget, 64, seed=1)
    b = pack_corpus([folder], tokenizer, budget, 64, seed=1)
    c = pack_corpus([folder], tokenizer, budget, 64, seed=2)
    assert np.array_equal(a.tokens, b.tokens) and not np.array_equal(a.tokens, c.tokens)
    assert a.epochs < 1 and not a.corpus_tokens_exact
    total = sum(len(t.encode()) + 1 for t in read_texts([folder]))
    assert a.corpus_tokens == pytest.approx(total, rel=0.2)  # estimated from row counts
    assert a.epochs == pytest.approx(budget // 64 * 64 / a.corpus_tokens)
    # about a quarter of the corpus, drawn from every file in proportion
    text = tokenizer.decode(a.tokens.tolist())
    counts = [text.count(f"[file{i}]") for i in range(5)]
    assert min(counts) >= 5, counts  # ~20 each expected


def test_keep_filter_is_counted(articles, tmp_path):
    path = write_text_parquet(tmp_path / "c.parquet", articles[:20])
    keep = lambda text: "Homarus" not in text  # noqa: E731 — drop the article naming it
    corpus = pack_corpus([path], ByteTokenizer(), 10 ** 6, 64, seed=0, keep=keep)
    assert corpus.skipped_documents == sum(1 for a in articles[:20] if "Homarus" in a) >= 1
    assert corpus.documents == 20 - corpus.skipped_documents
    assert "Homarus" not in ByteTokenizer().decode(corpus.tokens.tolist())


def test_reading_errors_are_clear(tmp_path):
    tokenizer = ByteTokenizer()
    with pytest.raises(WebmillError, match="no such file"):
        pack_corpus([tmp_path / "missing"], tokenizer, 1000, 10, seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WebmillError, match="no .parquet"):
        pack_corpus([tmp_path / "empty"], tokenizer, 1000, 10, seed=0)
    pq.write_table(pa.table({"content": ["hello"]}), tmp_path / "notext.parquet")
    with pytest.raises(WebmillError, match="no 'text' column"):
        pack_corpus([tmp_path / "notext.parquet"], tokenizer, 1000, 10, seed=0)
    write_text_parquet(tmp_path / "blank.parquet", ["", None])
    with pytest.raises(WebmillError, match="no document with text"):
        pack_corpus([tmp_path / "blank.parquet"], tokenizer, 1000, 10, seed=0)
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"title": "no text"}\n')
    with pytest.raises(WebmillError, match=r"bad.jsonl:2: no 'text' field"):
        list(read_texts([tmp_path / "bad.jsonl"]))
    with pytest.raises(WebmillError, match="smaller than one block"):
        pack_corpus([tmp_path / "bad.jsonl"], tokenizer, 5, 10, seed=0)


def test_webmill_output_folder_reads_its_data(articles, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "stats.json").write_text("{}")
    (out / "work").mkdir()
    write_text_parquet(out / "data" / "000_x.parquet", articles[:5])
    write_text_parquet(out / "work" / "intermediate.parquet", ["not the corpus"])
    assert list_files([out]) == [out / "data" / "000_x.parquet"]
    texts = balanced_sample([[out], [out / "work"]], chars_per_corpus=10, seed=0)
    assert len(texts) == 2 and texts[1] == "not the corpus"
