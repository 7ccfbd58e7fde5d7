"""The small-model ablation: train the same small GPT on each corpus and compare the scores.

    corpus (Parquet/JSONL) ──data.pack_corpus──► fixed token budget, EOS-separated, seeded order
                                                        │
    tokenizer.py (bytes, or a small shared BPE)         ▼
    model.py (GPT with the BigScience/Falcon knobs) ──train.train──► losses, evals, checkpoint
                                                        │
    evaluate.py (bits per byte, likelihood tasks) ◄─────┘ ──► study.py / report.py
"""
