"""Load the versioned claims file (claims/claims.yaml) into typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

MUSCULOSKELETAL_PTS_FILE = Path(__file__).resolve().parent / "data" / "musculoskeletal_pts.csv"
CLAIM_KINDS = ("disproportionality", "time_to_onset", "dose_response", "proportion", "on_treatment")


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    statement: str
    quote: str
    citation: str
    pts: dict[str, str]  # PT -> why it counts as evidence
    caveat: str | None = None
    threshold_days: int | None = None
    study_prevalence: float | None = None
    study_n: int | None = None
    pts_from_claims: tuple[str, ...] = ()

    @property
    def pt_list(self) -> list[str]:
        return list(self.pts)


@dataclass(frozen=True)
class ClaimCatalog:
    version: str
    drug: str
    article_title: str
    claims: tuple[Claim, ...] = field(default_factory=tuple)

    def by_id(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.id == claim_id:
                return claim
        raise KeyError(f"no claim {claim_id!r} in claims file version {self.version}")

    @property
    def all_pts(self) -> list[str]:
        seen: dict[str, None] = {}
        for claim in self.claims:
            for pt in claim.pts:
                seen.setdefault(pt, None)
        return list(seen)


def load_claims(path: Path) -> ClaimCatalog:
    """Parse and check the claims file; inherited PT groups (pts_from_claims) are resolved here."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    raw_claims = document.get("claims") or []
    by_id = {entry["id"]: entry for entry in raw_claims}
    claims = []
    for entry in raw_claims:
        kind = entry.get("kind")
        if kind not in CLAIM_KINDS:
            raise ValueError(f"{path}: claim {entry.get('id')!r}: kind {kind!r} is not one of {CLAIM_KINDS}")
        pts = dict(entry.get("pts") or {})
        inherited = tuple(entry.get("pts_from_claims") or ())
        for parent in inherited:
            if parent not in by_id:
                raise ValueError(f"{path}: claim {entry['id']!r}: pts_from_claims names unknown claim {parent!r}")
            for pt, why in (by_id[parent].get("pts") or {}).items():
                pts.setdefault(pt, f"from claim {parent}: {why}")
        if not pts:
            raise ValueError(f"{path}: claim {entry['id']!r} has no evidence PTs")
        claims.append(
            Claim(
                id=entry["id"],
                kind=kind,
                statement=entry["statement"],
                quote=entry["quote"],
                citation=entry["citation"],
                pts=pts,
                caveat=entry.get("caveat"),
                threshold_days=entry.get("threshold_days"),
                study_prevalence=entry.get("study_prevalence"),
                study_n=entry.get("study_n"),
                pts_from_claims=inherited,
            )
        )
    article = document.get("article") or {}
    return ClaimCatalog(
        version=str(document["version"]),
        drug=document.get("drug", ""),
        article_title=article.get("title", ""),
        claims=tuple(claims),
    )


def musculoskeletal_pts(path: Path = MUSCULOSKELETAL_PTS_FILE) -> list[str]:
    """Musculoskeletal PTs (Chen 2021 group plus the SOC's pain PTs): the 'beyond the article' scope."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return [row["pt"] for row in csv.DictReader(handle)]
