"""openFDA's download manifest (https://api.fda.gov/download.json): which drug/event partitions exist.

Shape (only the part used here):
  {"meta": {...}, "results": {"drug": {"event": {"export_date": "2024-07-03", "total_records": N,
     "partitions": [{"display_name": "2004 Q1 (part 1 of 3)", "file": "https://download.open.fda.gov/
       drug/event/2004q1/drug-event-0001-of-0003.json.zip", "size_mb": "27.91", "records": 58352}, ...]}}}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MANIFEST_URL = "https://api.fda.gov/download.json"
_QUARTER_IN_NAME = re.compile(r"(?P<year>(?:19|20)\d{2})\s*[-_ ]?\s*Q(?P<q>[1-4])", re.IGNORECASE)
_PART = re.compile(r"(?P<part>\d{4})-of-(?P<parts>\d{4})")


class ManifestError(ValueError):
    """The manifest lacks results.drug.event.partitions or a partition lacks its file."""


@dataclass(frozen=True)
class Partition:
    """One downloadable drug/event file."""

    file: str  # URL (or a local path in a mirrored manifest)
    display_name: str
    size_mb: float | None
    records: int | None
    quarter: str | None  # '2004Q1'; None for files not named by quarter (e.g. 'all other')
    part: str  # '0001-of-0003'

    @property
    def file_name(self) -> str:
        return Path(urlparse(self.file).path).name


@dataclass(frozen=True)
class Manifest:
    export_date: str | None
    total_records: int | None
    partitions: tuple[Partition, ...]

    def select(self, quarters: Iterable[str] | None = None) -> list[Partition]:
        """Partitions of the given quarters ('2004Q1', '2004q1'); all when `quarters` is None."""
        if quarters is None:
            return list(self.partitions)
        wanted = {q.upper() for q in quarters}
        return [p for p in self.partitions if p.quarter in wanted]


def _number(value: Any, kind: type) -> Any:
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _quarter(*texts: str) -> str | None:
    for text in texts:
        match = _QUARTER_IN_NAME.search(text)
        if match:
            return f"{match['year']}Q{match['q']}"
    return None


def parse_manifest(document: dict[str, Any]) -> Manifest:
    try:
        event = document["results"]["drug"]["event"]
        raw_partitions = event["partitions"]
    except (KeyError, TypeError) as exc:
        raise ManifestError("manifest has no results.drug.event.partitions") from exc
    partitions = []
    for i, entry in enumerate(raw_partitions):
        file = str(entry.get("file") or "").strip()
        if not file:
            raise ManifestError(f"partition #{i} ({entry.get('display_name')!r}) has no file")
        name = str(entry.get("display_name") or "")
        path = urlparse(file).path
        part = _PART.search(Path(path).name)
        partitions.append(
            Partition(
                file=file,
                display_name=name,
                size_mb=_number(entry.get("size_mb"), float),
                records=_number(entry.get("records"), int),
                quarter=_quarter(path, name),
                part=f"{part['part']}-of-{part['parts']}" if part else Path(path).name.split(".")[0],
            )
        )
    return Manifest(
        export_date=event.get("export_date"),
        total_records=_number(event.get("total_records"), int),
        partitions=tuple(partitions),
    )


def read_manifest(location: str | Path, *, timeout: float = 60.0) -> Manifest:
    """Read a manifest from a local file or, for an http(s) URL, download it with requests."""
    text = str(location)
    if urlparse(text).scheme in ("http", "https"):
        import requests

        response = requests.get(text, timeout=timeout)
        response.raise_for_status()
        return parse_manifest(response.json())
    return parse_manifest(json.loads(Path(location).read_text(encoding="utf-8")))
