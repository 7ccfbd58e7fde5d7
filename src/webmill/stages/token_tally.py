"""Tokens and characters of the documents a stage kept, for the funnel in `stats.json` and the card.

A `TokenTally` follows each stage once documents hold text (after `extract`, or from the start for text
input) and adds the token count of every document passing through to the stage's `tokens_kept` counter.
Most stages pass text on unchanged, so each document's last count is remembered with its text and reused
while the text is the same; only stages that rewrite text (line removal, PII) cost a new count.
"""

from __future__ import annotations

from collections import OrderedDict

from datatrove.pipeline.base import PipelineStep

from webmill.tokens import TokenCounter

TOKENS_KEPT = "tokens_kept"


class _LastCounts:
    """document id → (text, tokens) of the most recent documents, shared by the tallies of a process that
    count with the same tokenizer (documents stream through the stages one after another, so a few
    thousand entries are plenty)."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self.entries: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def tokens(self, doc_id: str, text: str, counter: TokenCounter) -> int:
        known = self.entries.get(doc_id)
        if known is not None and known[0] == text:  # an identical text object compares in O(1)
            self.entries.move_to_end(doc_id)
            return known[1]
        count = counter.count(text)
        self.entries[doc_id] = (text, count)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return count


# per tokenizer and worker process: (counter, its last counts)
_COUNTING: dict[str, tuple[TokenCounter, _LastCounts]] = {}


class TokenTally(PipelineStep):
    type = "🔢 - COUNT"
    name = "token tally"

    def __init__(self, tokenizer: str = "sentencepiece"):
        super().__init__()
        self.tokenizer = tokenizer

    def run(self, data, rank: int = 0, world_size: int = 1):
        # made in the worker process: a SentencePiece processor is not sent to workers
        if self.tokenizer not in _COUNTING:
            _COUNTING[self.tokenizer] = (TokenCounter(self.tokenizer), _LastCounts())
        counter, last_counts = _COUNTING[self.tokenizer]
        for doc in data:
            with self.track_time():
                self.stat_update(TOKENS_KEPT, value=last_counts.tokens(doc.id, doc.text, counter))
                self.update_doc_stats(doc)
            yield doc
