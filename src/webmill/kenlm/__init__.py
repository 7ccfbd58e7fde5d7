"""KenLM perplexity models in the manner of CCNet (Wenzek et al., 2020): normalise text, train a
SentencePiece + KenLM model from reference text, score documents, and compute perplexity cutoffs.

    normalize.py   the text normalisation applied before training and before scoring
    reference.py   reading reference text files (.txt, .txt.gz; WikiText's tokenised form)
    train.py       SentencePiece + lmplz + build_binary -> {lang}.sp.model, {lang}.arpa.bin, manifest
    score.py       LanguageModel: perplexity of a document
    cutoffs.py     perplexity percentiles of a corpus -> {lang}.cutoffs.json (head / middle / tail)
"""
