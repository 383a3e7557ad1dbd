"""Background totals for each claim's PT group: reports (all drugs) with ANY of the group's PTs.

Summing per-PT counts would count a report with two of the group's PTs twice, so each group costs one
`limit=0` request (an OR over the PTs and their legacy UPPER-CASE spellings). Responses are kept raw
and cached per (end, data version, claims version): a backfill over fetched weeks makes no requests.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

from claims.catalog import ClaimCatalog
from pv.settings import Settings
from pv.storage import atomic_write_bytes, atomic_write_json


def pt_spellings(pts: list[str]) -> list[str]:
    """The PTs as MedDRA spells them plus the UPPER CASE of legacy reports (`.exact` is case-sensitive)."""
    seen: dict[str, None] = {}
    for pt in pts:
        seen.setdefault(pt, None)
        seen.setdefault(pt.upper(), None)
    return list(seen)


def group_search(pts: list[str], end: datetime) -> str:
    from extractors.openfda.query import reactions_any, received_before

    return f"{received_before(end)} AND {reactions_any(pt_spellings(pts))}"


def _total(body: bytes, status: int, search: str) -> int:
    if status == 404:
        return 0  # openFDA answers "No matches found!" for zero hits
    if status != 200:
        raise RuntimeError(f"openFDA answered {status} to the claim-group query {search!r}: {body[:300]!r}")
    return int(json.loads(body)["meta"]["results"]["total"])


def fetch_claim_group_totals(settings: Settings, end: datetime, catalog: ClaimCatalog, data_version: str) -> Path:
    """Write and return `claim_groups.json`: {claim_id: {"pts": [...], "event_total": n}}."""
    from extractors.openfda.client import make_client

    out_dir = (
        Path(settings.data_dir) / "raw" / f"drug={settings.drug}" / "claim_groups"
        / f"end={end:%Y-%m-%dT%H%M}_version={data_version}_claims={catalog.version}"
    )
    summary_path = out_dir / "claim_groups.json"
    if summary_path.exists() and not settings.refresh:
        return summary_path
    client = make_client(settings)
    summary: dict[str, dict] = {}
    for claim in catalog.claims:
        search = group_search(claim.pt_list, end)
        response = client.get({"search": search, "limit": "0"})
        atomic_write_bytes(out_dir / "responses" / f"{claim.id}.json.gz", gzip.compress(response.body, mtime=0))
        summary[claim.id] = {
            "pts": claim.pt_list,
            "search": search,
            "status": response.status,
            "event_total": _total(response.body, response.status, search),
        }
    atomic_write_json(summary_path, summary)
    return summary_path
