"""The files of a model folder, one set per language (the names CCNet uses for its released models):

    {lang}.sp.model        SentencePiece tokenizer
    {lang}.arpa.bin        KenLM binary n-gram model
    {lang}.manifest.json   how it was trained (written by `webmill kenlm train`)
    {lang}.cutoffs.json    perplexity percentiles of a corpus (written by `webmill kenlm cutoffs`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webmill.errors import WebmillError

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "assets" / "kenlm"


@dataclass(frozen=True)
class ModelFiles:
    folder: Path
    lang: str

    @property
    def sp_model(self) -> Path:
        return self.folder / f"{self.lang}.sp.model"

    @property
    def binary(self) -> Path:
        return self.folder / f"{self.lang}.arpa.bin"

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.lang}.manifest.json"

    @property
    def cutoffs(self) -> Path:
        return self.folder / f"{self.lang}.cutoffs.json"

    def require_model(self) -> "ModelFiles":
        """Raise a WebmillError that names the command making whatever is missing."""
        if not self.folder.is_dir():
            raise WebmillError(f"KenLM model folder not found: {self.folder}; train a model with "
                               f"`webmill kenlm train --text FILE... --lang {self.lang} --out {self.folder}`")
        for path in (self.sp_model, self.binary):
            if not path.is_file():
                raise WebmillError(f"KenLM model file not found: {path}; train it with "
                                   f"`webmill kenlm train --text FILE... --lang {self.lang} --out {self.folder}`")
        return self

    def require_cutoffs(self) -> "ModelFiles":
        self.require_model()
        if not self.cutoffs.is_file():
            raise WebmillError(f"perplexity cutoffs not found: {self.cutoffs}; compute them with "
                               f"`webmill kenlm cutoffs --model {self.folder} --lang {self.lang} --corpus DATA...`")
        return self


def languages_in(folder: str | Path) -> list[str]:
    """Languages with both a tokenizer and a binary model in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    langs = [p.name.removesuffix(".arpa.bin") for p in folder.glob("*.arpa.bin")]
    return sorted(lang for lang in langs if ModelFiles(folder, lang).sp_model.is_file())
