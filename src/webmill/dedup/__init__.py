"""Deduplication: exact (by key) and near-duplicate (MinHash)."""
