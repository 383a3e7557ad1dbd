from __future__ import annotations

import csv
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from normalization.terms import TERMS_FILE, load_term_map, normalize_pt, normalize_reactions, unknown_terms

DATA = Path(__file__).resolve().parents[1] / "data" / "normalization"


@pytest.mark.parametrize(
    ("verbatim", "pt", "rule"),
    [
        ("Back pain", "Back pain", "exact"),
        ("BACK PAIN", "Back pain", "case"),
        ("  back   pain ", "Back pain", "case"),
        ("Back pain.", "Back pain", "case"),
        ("DRUG ADMINISTRATION ERROR", "Drug administration error", "case"),
        ("C-REACTIVE PROTEIN INCREASED", "C-reactive protein increased", "case"),
        ("TYPE IV HYPERSENSITIVITY REACTION", "Type IV hypersensitivity reaction", "case"),
        ("sle arthritis", "SLE arthritis", "case"),
        ("HALLUCINATION,VISUAL", "Hallucination, visual", "case"),
        ("Diarrhea", "Diarrhoea", "spelling"),
        ("edema peripheral", "Oedema peripheral", "spelling"),
        ("Cerebral hemorrhage", "Cerebral haemorrhage", "spelling"),
        ("Hyponatremia", "Hyponatraemia", "spelling"),
        ("Paresthesia", "Paraesthesia", "spelling"),
        ("sacroilitis", "Sacroiliitis", "spelling"),
        ("backache", "Back pain", "synonym"),
        ("Low back pain", "Back pain", "synonym"),
        ("LUMBAGO", "Back pain", "synonym"),
        ("Achilles tendonitis", "Tendonitis", "synonym"),
        ("Achilles tendinitis", "Tendonitis", "synonym"),
        ("joint pain", "Arthralgia", "synonym"),
        ("muscle pain", "Myalgia", "synonym"),
        ("Benign intracranial hypertension", "Idiopathic intracranial hypertension", "synonym"),
    ],
)
def test_normalize_pt_maps_to_the_meddra_pt(verbatim: str, pt: str, rule: str) -> None:
    mapping = normalize_pt(verbatim)
    assert (mapping.pt, mapping.known, mapping.rule) == (pt, True, rule)


@pytest.mark.parametrize(("verbatim", "kept"), [(" Knee wobble ", "Knee wobble"), ("Leukemia", "Leukemia")])
def test_unknown_terms_are_kept_verbatim_and_never_guessed(verbatim: str, kept: str) -> None:
    mapping = normalize_pt(verbatim)
    assert (mapping.pt, mapping.known, mapping.rule) == (kept, False, "unknown")


def test_missing_term_has_no_pt() -> None:
    assert normalize_pt(None).pt is None
    assert normalize_pt("   ").rule == "unknown"


def test_mapping_file_is_versioned_and_each_entry_has_a_source() -> None:
    raw = yaml.safe_load(TERMS_FILE.read_text())
    assert raw["version"] == load_term_map().version
    assert all(entry["sources"] for entry in raw["known_pts"])
    assert all(entry["source"] in raw["sources"] for entry in raw["mappings"])
    assert {s for entry in raw["known_pts"] for s in entry["sources"]} <= set(raw["sources"])


def test_every_chen2021_pt_is_known_in_its_own_spelling() -> None:
    with (DATA / "toxicity-groups-meddra-pts-chen2021.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    musculoskeletal = [
        r["Preferred.terms"] for r in rows if r["Toxicity.types"] == "Musculoskeletal Toxicities"
    ]
    assert len(musculoskeletal) == 47
    known = load_term_map().known_pts
    assert {r["Preferred.terms"] for r in rows} <= known
    assert all(normalize_pt(r["Preferred.terms"]).rule == "exact" for r in rows)


def test_normalize_reactions_matches_the_scalar_mapping_row_by_row() -> None:
    frame = pd.DataFrame(
        {"pt_verbatim": pd.array(["BACK PAIN", None, "backache", "Knee wobble", "BACK PAIN"], dtype="string")}
    )
    out = normalize_reactions(frame)
    assert out["pt"].tolist() == ["Back pain", pd.NA, "Back pain", "Knee wobble", "Back pain"]
    assert out["pt_known"].tolist() == [True, False, True, False, True]
    assert out["mapping_rule"].tolist() == ["case", "unknown", "synonym", "unknown", "case"]
    assert unknown_terms(out).to_dict("records") == [{"term": "Knee wobble", "count": 1}]


def test_normalize_reactions_runs_over_100k_reactions_per_second() -> None:
    terms = ["BACK PAIN", "Arthralgia", "joint pain", "Diarrhea", "Something new", "Myalgia"] * 50_000
    frame = pd.DataFrame({"pt_verbatim": pd.array(terms, dtype="string")})
    load_term_map()
    start = time.perf_counter()
    out = normalize_reactions(frame)
    elapsed = time.perf_counter() - start
    assert len(out) / elapsed > 100_000
    assert int(out["pt_known"].sum()) == 250_000


def test_every_pt_of_the_claim_groups_is_a_known_pt() -> None:
    claims = yaml.safe_load((Path(__file__).resolve().parents[2] / "claims" / "claims.yaml").read_text())
    pts = {pt for claim in claims["claims"] for pt in (claim.get("pts") or {})}
    assert pts, "claims.yaml names no PTs"
    assert sorted(pts - load_term_map().known_pts) == []
