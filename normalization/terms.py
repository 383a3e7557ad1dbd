"""Reaction terms -> canonical MedDRA preferred terms.

Reports spell the same PT many ways (legacy UPPERCASE, US spelling, lay words, LLTs). Signals count
reports per PT, so every spelling must land on one PT or the counts split. Mapping is table-driven from
the versioned normalization/data/meddra_terms.yaml and never guesses: a term not in the table is kept
verbatim (trimmed) with pt_known=False, so nothing is silently merged into the wrong PT.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

TERMS_FILE = Path(__file__).resolve().parent / "data" / "meddra_terms.yaml"

RULES = ("exact", "case", "spelling", "synonym", "unknown")

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u00b4`"), "'")
_SPACES = re.compile(r"\s+")
_COMMA = re.compile(r"\s*,\s*")


@dataclass(frozen=True)
class TermMapping:
    pt: str | None
    known: bool
    rule: str


@dataclass(frozen=True)
class TermMap:
    """The loaded mapping file: folded key -> PT, plus synonym/spelling entries and rewrites."""

    version: str
    known_pts: frozenset[str]
    by_key: dict[str, str]
    mappings: dict[str, tuple[str, str]]  # folded term -> (pt, rule)
    spelling: tuple[tuple[re.Pattern[str], str], ...]
    sources: dict[str, list[str]] = field(default_factory=dict)  # pt -> sources


def fold(term: str) -> str:
    """Key that ignores case, Unicode dash/quote variants, whitespace and a trailing full stop."""
    text = unicodedata.normalize("NFKC", term).translate(_DASHES).translate(_QUOTES)
    text = _SPACES.sub(" ", text).strip().rstrip(".").strip()
    text = _COMMA.sub(", ", text)
    return text.casefold()


def load_term_map(path: Path | str = TERMS_FILE) -> TermMap:
    """The parsed mapping file (cached per resolved path)."""
    return _load_term_map(Path(path).resolve())


@lru_cache(maxsize=8)
def _load_term_map(path: Path) -> TermMap:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - safe loader
    known: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    for entry in raw["known_pts"]:
        pt = entry["pt"]
        key = fold(pt)
        if key in known and known[key] != pt:
            raise ValueError(f"{path}: known PT {pt!r} collides with {known[key]!r}")
        known[key] = pt
        sources[pt] = list(entry.get("sources", []))
    mappings: dict[str, tuple[str, str]] = {}
    for entry in raw.get("mappings", []):
        term, pt, rule = entry["term"], entry["pt"], entry["rule"]
        if rule not in ("synonym", "spelling"):
            raise ValueError(f"{path}: mapping {term!r} has rule {rule!r}; expected synonym or spelling")
        if fold(pt) not in known or known[fold(pt)] != pt:
            raise ValueError(f"{path}: mapping {term!r} -> {pt!r} targets a PT missing from known_pts")
        if fold(term) in known:
            raise ValueError(f"{path}: mapping term {term!r} is itself a known PT")
        mappings[fold(term)] = (pt, rule)
    spelling = tuple((re.compile(pattern), repl) for pattern, repl in raw.get("spelling_us_to_gb", []))
    return TermMap(
        version=str(raw["version"]),
        known_pts=frozenset(known.values()),
        by_key=known,
        mappings=mappings,
        spelling=spelling,
        sources=sources,
    )


def terms_version(path: Path = TERMS_FILE) -> str:
    return load_term_map(path).version


def _british(key: str, rewrites: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    for pattern, repl in rewrites:
        key = pattern.sub(repl, key)
    return key


def normalize_pt(verbatim: str | None, *, term_map: TermMap | None = None) -> TermMapping:
    """Map one reported term to its canonical PT, naming the rule that did it."""
    tm = term_map or load_term_map()
    if verbatim is None or (not isinstance(verbatim, str) and pd.isna(verbatim)):
        return TermMapping(None, False, "unknown")
    text = str(verbatim)
    trimmed = text.strip()
    if not trimmed:
        return TermMapping(None, False, "unknown")
    if text in tm.known_pts:
        return TermMapping(text, True, "exact")
    key = fold(trimmed)
    if key in tm.by_key:
        return TermMapping(tm.by_key[key], True, "case")
    if key in tm.mappings:
        pt, rule = tm.mappings[key]
        return TermMapping(pt, True, rule)
    british = _british(key, tm.spelling)
    if british != key:
        if british in tm.by_key:
            return TermMapping(tm.by_key[british], True, "spelling")
        if british in tm.mappings:
            pt, rule = tm.mappings[british]
            return TermMapping(pt, True, rule)
    return TermMapping(trimmed, False, "unknown")


def normalize_reactions(reactions: pd.DataFrame, *, term_map: TermMap | None = None) -> pd.DataFrame:
    """Fill pt, pt_known and mapping_rule from pt_verbatim.

    Maps each distinct verbatim term once and broadcasts by position, so cost grows with the number
    of distinct terms (a few thousand), not with the number of reactions.
    """
    tm = term_map or load_term_map()
    out = reactions.copy()
    codes, uniques = pd.factorize(out["pt_verbatim"], use_na_sentinel=True)
    mapped = [normalize_pt(u, term_map=tm) for u in uniques]
    out["pt"] = pd.array([m.pt for m in mapped], dtype="string").take(codes, allow_fill=True)
    known = pd.array([m.known for m in mapped] + [False], dtype="boolean")
    out["pt_known"] = known.take(np.where(codes < 0, len(mapped), codes))
    rules = pd.array([m.rule for m in mapped] + ["unknown"], dtype="string")
    out["mapping_rule"] = rules.take(np.where(codes < 0, len(mapped), codes))
    return out


def unknown_terms(reactions: pd.DataFrame) -> pd.DataFrame:
    """Distinct unmapped terms with their counts, most frequent first: candidates for the mapping file."""
    unknown = reactions.loc[~reactions["pt_known"].fillna(False).astype(bool), "pt"].dropna()
    counts = unknown.value_counts()
    return pd.DataFrame({"term": counts.index.astype("string"), "count": counts.to_numpy(dtype="int64")})
