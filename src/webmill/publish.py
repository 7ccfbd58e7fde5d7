"""Publish a finished run to the Hugging Face Hub as a dataset repository.

What goes up: the corpus (`data/**/*.parquet`), the card (`README.md`, generated first when missing) and
its plots (`card_assets/`). What stays: `logs/`, `work/`, `stats.json`, exclusion folders, unfinished
files under `data/.partial/`, and anything else. Files are committed in batches (data first, the card
last), so a big corpus does not hang on one giant commit and the card appears only once the data is there.

The token comes from where huggingface_hub looks for it (`HF_TOKEN`, then the token file written by
`hf auth login`); webmill never prints it or writes it anywhere, and removes it from error messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from webmill.cards import ASSETS, make_card
from webmill.cards.collect import find_partitions, load_run
from webmill.errors import WebmillError

FILES_PER_COMMIT = 100
BYTES_PER_COMMIT = 10 * 1024**3


@dataclass
class Upload:
    repo_id: str
    private: bool
    root: Path
    files: list[tuple[str, int]]  # path relative to the output folder, size in bytes
    card_missing: bool

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise WebmillError(f"--repo {repo_id!r} is not a valid repository id ({err})") from None
    if repo_id.count("/") != 1:
        raise WebmillError(f"--repo {repo_id!r}: give it as user/name (or organisation/name)")
    return repo_id


def plan_upload(output_dir: Path | str, repo_id: str, private: bool = False) -> Upload:
    """The files that would be uploaded; checks the folder is a finished run."""
    root = Path(output_dir)
    load_run(root)  # a clear error for a missing or unfinished output folder
    check_repo_id(repo_id)
    data = root / "data"
    partitions = find_partitions(data) if data.is_dir() else {}
    files = [f for group in partitions.values() for f in group]
    if not files:
        raise WebmillError(f"{root} holds no Parquet files under data/: nothing to publish")
    card_missing = not (root / "README.md").is_file()
    if not card_missing:
        files.append(root / "README.md")
        assets = root / ASSETS
        files += sorted(p for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else []
    return Upload(repo_id, private, root, [(p.relative_to(root).as_posix(), p.stat().st_size) for p in files],
                  card_missing)


def describe(upload: Upload) -> str:
    visibility = "private" if upload.private else "public"
    lines = [f"webmill: dry run: would upload {len(upload.files)} file(s), {upload.total_bytes:,} bytes, to the "
             f"{visibility} dataset repository '{upload.repo_id}' ({_endpoint()}/datasets/{upload.repo_id})"]
    lines += [f"{size:>16,}  {path}" for path, size in upload.files]
    if upload.card_missing:
        lines.append(f"{'(generated)':>16}  README.md and {ASSETS}/ (the card, written by `webmill card` first)")
    lines.append("webmill: token: " + ("found" if _token() else "none found (set HF_TOKEN or run `hf auth login`)"))
    return "\n".join(lines)


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def _batches(files: list[tuple[str, int]]):
    batch, size = [], 0
    for path, bytes_ in files:
        if batch and (len(batch) == FILES_PER_COMMIT or size + bytes_ > BYTES_PER_COMMIT):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += bytes_
    if batch:
        yield batch


def publish(output_dir: Path | str, repo_id: str, private: bool = False, license_id: str = "other",
            progress=print) -> str:
    """Create the repository (if needed) and upload; returns the repository's URL."""
    upload = plan_upload(output_dir, repo_id, private)
    token = _token()
    if not token:
        raise WebmillError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    if upload.card_missing:
        make_card(upload.root, license_id=license_id)
        upload = plan_upload(output_dir, repo_id, private)
    try:
        return _upload(upload, token, progress)
    except WebmillError:
        raise
    except Exception as err:  # network, authentication, permissions, offline mode: one clear line
        message = " ".join(str(err).split()).replace(token, "<token>") or type(err).__name__
        kind = type(err).__name__
        hint = ""
        if "Offline" in kind:
            hint = "; HF_HUB_OFFLINE is set: unset it to publish"
        elif "Connect" in kind or "Timeout" in kind or isinstance(err, OSError):
            hint = f"; cannot reach {_endpoint()}: check the network (or HF_ENDPOINT)"
        raise WebmillError(f"publishing to {_endpoint()}/datasets/{repo_id} failed: {kind}: "
                           f"{message[:300]}{hint}") from None


def _upload(upload: Upload, token: str, progress) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    url = api.create_repo(upload.repo_id, repo_type="dataset", private=upload.private, exist_ok=True)
    data = [(p, s) for p, s in upload.files if p.startswith("data/")]
    card = [(p, s) for p, s in upload.files if not p.startswith("data/")]
    batches = list(_batches(data)) + [[p for p, _ in card]]
    for number, batch in enumerate(batches, 1):
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(upload.root / p)) for p in batch]
        api.create_commit(upload.repo_id, operations=operations, repo_type="dataset",
                          commit_message=f"webmill publish ({number}/{len(batches)})")
        progress(f"webmill: commit {number}/{len(batches)}: {len(batch)} file(s)")
    return str(url)
