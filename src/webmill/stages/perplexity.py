"""CCNet's perplexity filter (Wenzek et al., 2020): score each document with a KenLM model of its language
trained on reference text, and sort it into the head / middle / tail bucket of that language's
perplexity distribution (`{lang}.cutoffs.json`). datatrove has no such block.

Every scored document gets `perplexity` and `ccnet_bucket`; documents are dropped only when their bucket
is not in `keep_buckets` or their perplexity exceeds `max_perplexity`. The language comes from the
`language` stage (`doc.metadata["language"]`); a document whose language has no model here passes
through unscored and is counted as `no_model`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datatrove.pipeline.filters.base_filter import BaseFilter

from webmill.errors import WebmillError
from webmill.kenlm.cutoffs import Cutoffs, load_cutoffs
from webmill.kenlm.layout import SHIPPED_MODELS, ModelFiles, languages_in
from webmill.stages.registry import BuildContext, param, register

Bucket = Literal["head", "middle", "tail"]


@dataclass
class PerplexityParams:
    models: str | None = param(None, "folder with {lang}.sp.model, {lang}.arpa.bin, {lang}.cutoffs.json; "
                                     "default: the shipped English model (WikiText-2)")
    languages: list[str] | None = param(None, "languages to score; null: every language with a model in the folder")
    keep_buckets: list[Bucket] | None = param(None, "keep only these buckets (head, middle, tail); null keeps all")
    max_perplexity: float | None = param(None, "drop documents whose perplexity is above this")
    per_paragraph: bool = param(True, "score each paragraph as a sentence, as CCNet (false: the whole document)")


class PerplexityFilter(BaseFilter):
    name = "📉 perplexity (KenLM)"

    def __init__(self, params: PerplexityParams, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.params = params
        self.folder = Path(params.models) if params.models else SHIPPED_MODELS
        languages = params.languages or languages_in(self.folder)
        if not languages:
            ModelFiles(self.folder, "en").require_model()  # names the folder and the command to run
        self.cutoffs: dict[str, Cutoffs | None] = {}
        for lang in languages:
            files = ModelFiles(self.folder, lang)
            files.require_cutoffs() if params.keep_buckets else files.require_model()
            self.cutoffs[lang] = self._load_cutoffs(files) if files.cutoffs.is_file() else None
        self._models: dict = {}  # loaded lazily, in the worker process

    def _load_cutoffs(self, files: ModelFiles) -> Cutoffs:
        cutoffs = load_cutoffs(files.cutoffs)
        if cutoffs.per_paragraph != self.params.per_paragraph:
            raise WebmillError(f"{files.cutoffs} was computed with per_paragraph={cutoffs.per_paragraph} but the "
                               f"stage scores with per_paragraph={self.params.per_paragraph}; recompute the cutoffs")
        if cutoffs.model_sha256 and files.manifest.is_file():
            trained = json.loads(files.manifest.read_text())["files"][files.binary.name]["sha256"]
            if trained != cutoffs.model_sha256:
                raise WebmillError(f"{files.cutoffs} belongs to another model than {files.binary}; recompute it "
                                   f"with `webmill kenlm cutoffs --model {files.folder} --lang {files.lang} ...`")
        return cutoffs

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_models"] = {}  # KenLM models are not picklable; each worker loads its own
        return state

    def model(self, lang: str):
        if lang not in self._models:
            from webmill.kenlm.score import LanguageModel

            self._models[lang] = LanguageModel.load(self.folder, lang)
        return self._models[lang]

    def filter(self, doc):
        lang = doc.metadata.get("language")
        if lang not in self.cutoffs:
            self.stat_update("no_model")
            return True
        perplexity = self.model(lang).perplexity(doc.text, self.params.per_paragraph)
        cutoffs = self.cutoffs[lang]
        bucket = cutoffs.bucket(perplexity) if cutoffs else None
        doc.metadata["perplexity"] = round(perplexity, 1)
        doc.metadata["ccnet_bucket"] = bucket
        self.stat_update("scored")
        if bucket:
            self.stat_update(f"bucket_{bucket}")
        if self.params.keep_buckets is not None and bucket not in self.params.keep_buckets:
            return False, f"bucket_{bucket}"
        if self.params.max_perplexity is not None and perplexity > self.params.max_perplexity:
            return False, "perplexity_too_high"
        return True


@register("perplexity", PerplexityParams, "CCNet perplexity: KenLM score per language, head/middle/tail buckets",
          columns={"perplexity": "float32", "ccnet_bucket": "string"})
def build_perplexity(params: PerplexityParams, ctx: BuildContext):
    return PerplexityFilter(params, ctx.exclusion_writer("perplexity"))
