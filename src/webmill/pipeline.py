"""A validated recipe → the list of datatrove steps: reader, the recipe's stages, Parquet writer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.writers import JsonlWriter

from webmill.parquet_output import CorpusParquetWriter, output_columns
from webmill.recipe import Recipe
from webmill.stages.archive_reader import ArchiveReader
from webmill.stages.registry import BuildContext
from webmill.stages.shards import TagShard


@dataclass
class OutputLayout:
    """Where a run writes: the corpus, its stats, datatrove's logs and the input file list."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    @property
    def input_list(self) -> Path:
        return self.logs / "input_files.txt"


def write_input_list(recipe: Recipe, layout: OutputLayout) -> tuple[str, Path]:
    """datatrove shards a paths file across tasks (file i goes to task i % tasks), deterministically."""
    root = os.path.commonpath([os.path.dirname(f) for f in recipe.input_files])
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.input_list.write_text("".join(os.path.relpath(f, root) + "\n" for f in recipe.input_files))
    return root, layout.input_list


def exclusion_factory(folder: str | None):
    if not folder:
        return None

    def make(stage_index: int, stage_name: str):
        return JsonlWriter(os.path.join(folder, f"{stage_index:02d}_{stage_name}"), output_filename="${rank}.jsonl.gz")

    return make


def build_reader(recipe: Recipe, root: str, paths_file: Path, limit: int, progress: bool):
    exclusions = exclusion_factory(recipe.output.exclusions)
    fmt = recipe.input_format
    if fmt == "warc":
        return ArchiveReader(root, paths_file=str(paths_file), limit=limit, doc_progress=progress,
                             max_record_bytes=int(recipe.input.max_record_mb * 1_000_000),
                             exclusion_writer=exclusions(0, "read") if exclusions else None)
    reader_cls = JsonlReader if fmt == "jsonl" else ParquetReader
    reader = reader_cls(root, paths_file=str(paths_file), limit=limit, doc_progress=progress,
                        text_key=recipe.input.text_key, id_key=recipe.input.id_key,
                        default_metadata={"content_kind": "text"})
    return [reader, TagShard(root)]


def build_pipeline(recipe: Recipe, layout: OutputLayout, limit: int = -1,
                   progress: bool = False) -> tuple[list, list[str]]:
    """Return the datatrove steps and, for each, the recipe stage it comes from (for the stats)."""
    root, paths_file = write_input_list(recipe, layout)
    reader = build_reader(recipe, root, paths_file, limit, progress)
    steps = reader if isinstance(reader, list) else [reader]
    labels = [f"0:read ({recipe.input_format})"] * len(steps)
    factory = exclusion_factory(recipe.output.exclusions)
    stage_columns: dict[str, str] = {}
    for index, stage in enumerate(recipe.stages, start=1):
        built = stage.spec.build(stage.params, BuildContext(stage_index=index, exclusion_writer_factory=factory))
        built = built if isinstance(built, list) else [built]
        steps.extend(built)
        labels.extend([stage.label] * len(built))
        stage_columns.update(stage.spec.columns)
    out = recipe.output
    steps.append(CorpusParquetWriter(
        str(layout.data), output_columns(stage_columns),
        compression=None if out.compression == "none" else out.compression,
        max_file_bytes=out.max_file_mb << 20, row_group_rows=out.row_group_rows,
        row_group_bytes=out.row_group_mb << 20,
    ))
    labels.append(f"{len(recipe.stages) + 1}:write (parquet)")
    return steps, labels
