"""A validated recipe → a plan of datatrove pipelines: reader, the recipe's stages, Parquet writer.

Most recipes are one pipeline. A stage that needs the whole corpus before it can decide (deduplication)
puts a `Barrier` among its steps: the plan is then cut into phases. Each document phase ends by saving
its documents to `work/phase_N/<input index>.jsonl.gz`; the global jobs run; the next phase reads
those files back. Everything is keyed by input file, never by task, so the task count does not change
the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.writers import JsonlWriter

from webmill.parquet_output import CorpusParquetWriter, output_columns
from webmill.recipe import Recipe
from webmill.stages.archive_reader import ArchiveReader
from webmill.stages.registry import Barrier, BuildContext
from webmill.stages.shards import TagShard
from webmill.stages.token_tally import TokenTally


@dataclass
class OutputLayout:
    """Where a run writes: the corpus, its stats, datatrove's logs, intermediate files."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    @property
    def input_list(self) -> Path:
        return self.logs / "input_files.txt"


@dataclass
class Phase:
    """One datatrove executor run: its steps, the stage label of each step, its task count."""

    name: str
    steps: list = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    tasks: int | None = None  # None: the recipe's task count

    def add(self, steps, label: str) -> None:
        steps = steps if isinstance(steps, list) else [steps]
        self.steps.extend(steps)
        self.labels.extend([label] * len(steps))


def write_input_list(recipe: Recipe, layout: OutputLayout, dry_run: bool = False) -> tuple[str, Path, list[str]]:
    """datatrove shards a paths file across tasks (file i goes to task i % tasks), deterministically."""
    root = os.path.commonpath([os.path.dirname(f) for f in recipe.input_files])
    relative = [os.path.relpath(f, root) for f in recipe.input_files]
    if not dry_run:
        layout.logs.mkdir(parents=True, exist_ok=True)
        layout.input_list.write_text("".join(r + "\n" for r in relative))
    return root, layout.input_list, relative


def exclusion_factory(folder: str | None):
    if not folder:
        return None

    def make(stage_index: int, stage_name: str):
        return JsonlWriter(os.path.join(folder, f"{stage_index:02d}_{stage_name}"), output_filename="${rank}.jsonl.gz")

    return make


def build_reader(recipe: Recipe, root: str, paths_file: Path, relative: list[str], limit: int, progress: bool):
    exclusions = exclusion_factory(recipe.output.exclusions)
    fmt = recipe.input_format
    if fmt == "warc":
        reader = ArchiveReader(root, paths_file=str(paths_file), limit=limit, doc_progress=progress,
                               max_record_bytes=int(recipe.input.max_record_mb * 1_000_000),
                               exclusion_writer=exclusions(0, "read") if exclusions else None)
        return [reader, TagShard(root, relative)]
    reader_cls = JsonlReader if fmt == "jsonl" else ParquetReader
    reader = reader_cls(root, paths_file=str(paths_file), limit=limit, doc_progress=progress,
                        text_key=recipe.input.text_key, id_key=recipe.input.id_key,
                        default_metadata={"content_kind": "text"})
    return [reader, TagShard(root, relative, count=True)]


def build_plan(recipe: Recipe, layout: OutputLayout, limit: int = -1, progress: bool = False,
               dry_run: bool = False) -> list[Phase]:
    root, paths_file, relative = write_input_list(recipe, layout, dry_run)
    phases = [Phase("phase_0")]
    reader_label = f"0:read ({recipe.input_format})"
    phases[0].add(build_reader(recipe, root, paths_file, relative, limit, progress), reader_label)
    factory = exclusion_factory(recipe.output.exclusions)
    stage_columns: dict[str, str] = {}
    holds_text = recipe.input_format != "warc"  # archives hold HTML until the extract stage

    def count_tokens(label: str) -> None:  # after a stage, once documents hold text
        if recipe.output.count_tokens != "none" and holds_text:
            phases[-1].add(TokenTally(recipe.output.count_tokens), label)

    count_tokens(reader_label)
    for index, stage in enumerate(recipe.stages, start=1):
        built = stage.spec.build(stage.params, BuildContext(stage_index=index, exclusion_writer_factory=factory,
                                                            work_dir=str(layout.work / f"{index:02d}_{stage.spec.name}")))
        for step in built if isinstance(built, list) else [built]:
            if isinstance(step, Barrier):
                cut_phase(phases, step, stage.label, layout)
            else:
                phases[-1].add(step, stage.label)
        stage_columns.update(stage.spec.columns)
        holds_text = holds_text or stage.spec.name == "extract"
        count_tokens(stage.label)
    out = recipe.output
    writer_label = f"{len(recipe.stages) + 1}:write (parquet)"
    count_tokens(writer_label)
    phases[-1].add(CorpusParquetWriter(
        str(layout.data), output_columns(stage_columns),
        compression=None if out.compression == "none" else out.compression,
        max_file_bytes=out.max_file_mb << 20, row_group_rows=out.row_group_rows,
        row_group_bytes=out.row_group_mb << 20, route_by_language=out.route_by_language,
    ), writer_label)
    return phases


def cut_phase(phases: list[Phase], barrier: Barrier, label: str, layout: OutputLayout) -> None:
    """End the current document phase at `barrier`, run its global jobs, start the next phase."""
    current = phases[-1]
    saved = layout.work / current.name
    current.add(JsonlWriter(str(saved), output_filename="${shard_index}.jsonl.gz"), label)
    for job in barrier.jobs:
        phases.append(Phase(f"{label.replace(':', '_')}_{job.name}", tasks=job.tasks))
        phases[-1].add(job.steps, label)
    following = Phase(f"phase_{sum(p.tasks is None for p in phases)}")
    following.add(JsonlReader(str(saved), glob_pattern="*.jsonl.gz", add_file_path=False), label)
    phases.append(following)
