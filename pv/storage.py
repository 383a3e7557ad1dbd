"""Where each stage's outputs live, and atomic writes so a rerun replaces its own partition whole."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

_UMASK = os.umask(0o022)
os.umask(_UMASK)

STAGES = ("raw", "staged", "quarantine", "validation", "signals", "claims", "reports", "published")


def window_key(start: datetime, end: datetime) -> str:
    """Partition key of a data interval [start, end): '2026-11-16T0600_2026-11-23T0600'."""
    return f"{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}"


def partition_dir(data_dir: Path, stage: str, drug: str, start: datetime, end: datetime) -> Path:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return Path(data_dir) / stage / f"drug={drug}" / f"window={window_key(start, end)}"


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes owner-only files; outputs are for dashboards and readers too, so honour the umask.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def promote_dir(work: Path, final: Path) -> None:
    """Make the finished `work` directory the partition `final` in one rename, replacing any older one."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        os.replace(final, old)
    os.replace(work, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def replace_partition(final_dir: Path) -> Iterator[Path]:
    """Yield a scratch directory; on success it atomically becomes `final_dir`.

    A rerun therefore replaces its own partition and a failed run leaves the previous one intact.
    """
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = final_dir.with_name(f".{final_dir.name}.{uuid.uuid4().hex}.tmp")
    scratch.mkdir()
    try:
        yield scratch
        promote_dir(scratch, final_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
