"""Recipe loading: validation errors name the file, the stage and the key; YAML stays data."""

import subprocess
import sys

import pytest

from conftest import REPO, write_recipe
from webmill.errors import RecipeError
from webmill.recipe import load_recipe


@pytest.fixture
def warc_input(tmp_path, html_page):
    from conftest import write_warc

    return write_warc(tmp_path / "in.warc.gz", [{"url": "http://example.org/a", "body": html_page("A"),
                                                  "content_type": "text/html"}])


def error_of(path) -> str:
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    return str(err.value)


def test_shipped_recipes_load():
    for name in ("refinedweb", "fineweb"):
        recipe = load_recipe(REPO / "pipelines" / f"{name}.yaml", {"input": {"paths": [str(REPO / "data/samples/warc")]}})
        assert recipe.stages and recipe.input_format == "warc"
        assert all(f.endswith(".gz") for f in recipe.input_files)


def test_unknown_stage_is_named_with_a_suggestion(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", ["url_filter", {"extrct": {}}], [warc_input], tmp_path / "out")
    message = error_of(path)
    assert str(path) in message and "#2 'extrct'" in message and "did you mean 'extract'" in message


def test_unknown_parameter_names_stage_and_key(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", [{"language": {"min_scor": 0.5}}], [warc_input], tmp_path / "out")
    message = error_of(path)
    assert "#1 'language'" in message and "key 'min_scor'" in message and "min_score" in message


def test_mistyped_parameter(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", [{"extract": {"timeout_s": "fast"}}], [warc_input], tmp_path / "out")
    message = error_of(path)
    assert "key 'timeout_s'" in message and "expected float" in message
    path = write_recipe(tmp_path / "r.yaml", [{"language": {"languages": "en"}}], [warc_input], tmp_path / "out")
    assert "expected list[str] | null" in error_of(path)


def test_ints_are_accepted_for_floats_but_bools_are_not_ints(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", [{"extract": {"timeout_s": 2}}], [warc_input], tmp_path / "out")
    assert load_recipe(path).stages[0].params.timeout_s == 2.0
    path = write_recipe(tmp_path / "r.yaml", [{"extract": {"max_html_bytes": True}}], [warc_input], tmp_path / "out")
    assert "key 'max_html_bytes'" in error_of(path)


def test_missing_input(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", ["extract"], [tmp_path / "nothing-*.warc.gz"], tmp_path / "out")
    message = error_of(path)
    assert "stage input" in message and "key 'paths'" in message and "nothing-*.warc.gz" in message


def test_bad_executor_and_top_level_keys(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", [], [warc_input], tmp_path / "out", executor={"kind": "spark"})
    assert "stage executor" in error_of(path) and "key 'kind'" in error_of(path)
    path.write_text(path.read_text() + "stagez: []\n")
    assert "key 'stagez'" in error_of(path)


def test_python_yaml_tags_are_rejected(tmp_path, warc_input):
    path = tmp_path / "evil.yaml"
    path.write_text(f"input: {{paths: ['{warc_input}']}}\nstages:\n  - !!python/object/apply:os.system ['echo pwned']\n")
    assert "not allowed" in error_of(path)


def test_cli_reports_user_errors_without_traceback(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", [{"extract": {"timeout": 1}}], [warc_input], tmp_path / "out")
    result = subprocess.run([sys.executable, "-m", "webmill", "run", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "key 'timeout'" in result.stderr and "timeout_s" in result.stderr


def test_stages_command_lists_every_stage_with_defaults():
    result = subprocess.run([sys.executable, "-m", "webmill", "stages"], capture_output=True, text=True, check=True)
    for name in ("extract", "language", "url_filter", "gopher_quality", "gopher_repetition", "c4_quality",
                 "fineweb_quality", "refinedweb_lines"):
        assert f"\n{name}: " in "\n" + result.stdout
    assert "min_score (float, default 0.65)" in result.stdout


def test_slurm_dry_run_prints_sbatch_scripts_and_writes_nothing(tmp_path, warc_input):
    path = write_recipe(tmp_path / "r.yaml", ["extract", "exact_dedup"], [warc_input], tmp_path / "out",
                        executor={"tasks": 3})
    result = subprocess.run([sys.executable, "-m", "webmill", "run", str(path), "--executor", "slurm",
                             "--partition", "cpu-long", "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("#!/bin/bash") == 3  # documents, then the global job, then documents again
    assert "#SBATCH --partition=cpu-long" in result.stdout and "#SBATCH --array=0-2" in result.stdout
    assert "--dependency=afterok" in result.stdout
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # (datatrove makes empty log folders)
