"""A fastText quality classifier, as DCLM's: text the user trusts (positive) against random web text
(negative). `train.py` trains one (`webmill quality train`), `score.py` loads and applies it, `sources.py`
reads the training text, `normalize.py` is the one text normalisation both sides share."""
