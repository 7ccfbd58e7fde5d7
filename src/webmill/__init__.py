"""webmill: turn raw web crawl shards into pretraining corpora, offline, on datatrove."""

__version__ = "0.1.0"
