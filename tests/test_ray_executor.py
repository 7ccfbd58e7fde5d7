"""The same recipe on a real local Ray cluster gives the local executor's output, byte for byte."""

import pytest

from conftest import SAMPLES, assert_accounts_add_up, run, write_recipe

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'webmill[ray]')")

INPUTS = [SAMPLES / "warc" / n for n in ("CC-MAIN-2020-34-sample.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz")]
STAGES = ["extract", {"language": {"min_score": 0.3}}, "exact_dedup", "refinedweb_lines"]


def test_ray_output_equals_local_output(tmp_path):
    local = write_recipe(tmp_path / "local.yaml", STAGES, INPUTS, tmp_path / "local", executor={"tasks": 2, "workers": 2})
    on_ray = write_recipe(tmp_path / "ray.yaml", STAGES, INPUTS, tmp_path / "ray",
                          executor={"kind": "ray", "tasks": 2, "workers": 2})
    local_report = run(local)
    # a fresh single-node cluster on loopback (its socket paths must stay short: AF_UNIX limit)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_report = run(on_ray)
    finally:
        ray.shutdown()
    assert_accounts_add_up(ray_report)
    assert [r["read"] for r in ray_report["stages"]] == [r["read"] for r in local_report["stages"]]
    local_files = {p.name: p.read_bytes() for p in (tmp_path / "local" / "data").glob("*.parquet")}
    ray_files = {p.name: p.read_bytes() for p in (tmp_path / "ray" / "data").glob("*.parquet")}
    assert local_files and ray_files == local_files
