"""Deduplicated FAERS tables -> the canonical staged tables (reports, drugs, reactions).

Conventions (docs/sources.md has the full list):
- safetyreportid = primaryid (ISR for legacy AERS), caseid = caseid (CASE), version = caseversion.
- receivedate = init_fda_dt (legacy AERS has none: fda_dt of that version), receiptdate = fda_dt.
- serious = 1 when the report has any OUTC outcome code, else 2 (how FDA derives seriousness).
- Partial dates (YYYY, YYYYMM) are stored as the first day of their period with a precision.
  A drug's THER rows are combined: earliest start, latest end, durations summed.
- tto_days = event_date - start_date of the same report and drug_seq (computed for every drug row,
  so the isotretinoin row carries its time to onset). Partial dates are compared by their period
  start, exactly like the openFDA path, and tto_precision is the coarser of the two precisions:
  only tto_precision == 'day' is an exact time to onset.
- cum_dose_mg = cum_dose_chr x unit factor (KG, G, MG, UG/MCG, NG, PG); per-weight units
  (MG/KG, UG/KG, G/KG) use the report's weight; other units (DF, ML, IU, ...) give null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from extractors.faers_ascii.dates import parse_dates, period_end
from extractors.faers_ascii.dedup import DedupResult
from extractors.faers_ascii.reader import quarantine_frame
from normalization import model
from normalization.drugs import ACTIVE_SUBSTANCE_COLUMN, normalize_drugs
from normalization.openfda import AGE_BINS, AGE_LABELS, MAX_AGE_YEARS, MAX_WEIGHT_KG
from normalization.terms import normalize_reactions, terms_version

SOURCE = "faers_ascii"
STAGE = "normalize"

AGE_CODE_YEARS = {"DEC": 10.0, "YR": 1.0, "MON": 1 / 12, "WK": 7 / 365.25, "DY": 1 / 365.25, "HR": 1 / 8766}
WEIGHT_CODE_KG = {"KG": 1.0, "LBS": 0.45359237, "LB": 0.45359237, "GMS": 0.001, "G": 0.001}
SEX_CODES = {"M": 1, "F": 2, "UNK": 0, "NS": 0, "U": 0}
ROLE_CHARACTERIZATION = {"PS": 1, "SS": 1, "C": 2, "I": 3}
DOSE_UNIT_MG = {"KG": 1e6, "G": 1e3, "GM": 1e3, "MG": 1.0, "UG": 1e-3, "MCG": 1e-3, "NG": 1e-6, "PG": 1e-9}
DOSE_PER_KG_UNIT_MG = {"G/KG": 1e3, "MG/KG": 1.0, "UG/KG": 1e-3, "MCG/KG": 1e-3}
DURATION_CODE_DAYS = {
    "YR": 365.25, "MON": 30.4375, "WK": 7.0, "DAY": 1.0, "DY": 1.0, "HR": 1 / 24, "MIN": 1 / 1440, "SEC": 1 / 86400,
}  # fmt: skip
EXTRA_TABLES = {"OUTC": "outcomes", "RPSR": "report_sources", "THER": "therapies", "INDI": "indications"}


@dataclass
class FaersBatch:
    """Canonical tables of the quarters loaded together, plus FAERS-only tables kept verbatim."""

    reports: pd.DataFrame
    drugs: pd.DataFrame
    reactions: pd.DataFrame
    quarantine: pd.DataFrame
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)  # outcomes, therapies, ...
    stats: dict[str, int] = field(default_factory=dict)
    terms_version: str = ""


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(_text(values), errors="coerce").astype("Float64")


class _Notes:
    """Values set to null during normalization ('nulled' quarantine rows: the row itself stays)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, dataset: str, ids: pd.Series, fld: str, values: pd.Series, bad: pd.Series, what: str,
            source_file: pd.Series, line: pd.Series) -> int:  # fmt: skip
        bad = bad.fillna(False).astype(bool)
        if not bad.any():
            return 0
        value = values[bad].astype("string")
        rid = ids[bad].astype("string")
        self.parts.append(
            pd.DataFrame(
                {
                    "stage": STAGE,
                    "dataset": f"faers_ascii/{dataset}",
                    "record_id": rid,
                    "field": fld,
                    "value": value,
                    "reason": "primaryid " + rid + f": {fld} '" + value.fillna("") + f"' {what}",
                    "source_file": source_file[bad].astype("string"),
                    "line_number": line[bad],
                    "action": "nulled",
                }
            )
        )
        return int(bad.sum())

    def frame(self) -> pd.DataFrame:
        return (
            quarantine_frame(pd.concat(self.parts, ignore_index=True)) if self.parts else quarantine_frame([])
        )


def _source_files(frame: pd.DataFrame, table: str, files: Mapping[tuple[str, str], str]) -> pd.Series:
    return frame["quarter"].map(lambda q: files.get((q, table), "")).astype("string")


def _reports(
    demo: pd.DataFrame, outc: pd.DataFrame, notes: _Notes, files: Mapping[tuple[str, str], str]
) -> pd.DataFrame:
    ids = demo["primaryid"].astype("string")
    src = _source_files(demo, "DEMO", files)
    line = demo["line_number"]
    event = parse_dates(demo["event_dt"], partial=True)
    fda = parse_dates(demo["fda_dt"], partial=False).date
    # legacy AERS has no init_fda_dt: its receivedate is the fda_dt of the version loaded
    receivedate = (
        parse_dates(demo["init_fda_dt"], partial=False).date.fillna(fda) if "init_fda_dt" in demo else fda
    )

    age = _number(demo["age"])
    age_code = _text(demo["age_cod"]).str.upper()
    age_years = age * age_code.map(AGE_CODE_YEARS).astype("Float64")
    notes.add(
        "DEMO", ids, "age_cod", age_code, age.notna() & age_years.isna(), "is not an age unit", src, line
    )
    implausible = (age_years < 0) | (age_years > MAX_AGE_YEARS)
    notes.add("DEMO", ids, "age", demo["age"].astype("string") + " " + age_code.fillna(""), implausible,
              f"is not a plausible age (0-{MAX_AGE_YEARS:g} years)", src, line)  # fmt: skip
    age_years = age_years.mask(implausible.fillna(False))
    age_group = pd.cut(age_years.astype("float64"), AGE_BINS, right=False, labels=AGE_LABELS)

    weight = _number(demo["wt"]) * _text(demo["wt_cod"]).str.upper().map(WEIGHT_CODE_KG).astype("Float64")
    implausible_weight = (weight <= 0) | (weight > MAX_WEIGHT_KG)
    notes.add("DEMO", ids, "wt", demo["wt"].astype("string") + " " + _text(demo["wt_cod"]).fillna(""),
              implausible_weight, f"is not a plausible weight (0-{MAX_WEIGHT_KG:g} kg)", src, line)  # fmt: skip
    weight = weight.mask(implausible_weight.fillna(False))

    serious = np.where(demo["primaryid"].isin(outc["primaryid"]), 1, 2)
    country = _text(demo["occr_country"]).str.upper() if "occr_country" in demo else None
    frame = pd.DataFrame(
        {
            "source": SOURCE,
            "safetyreportid": ids,
            "caseid": demo["caseid"].astype("string"),
            "safetyreportversion": demo["caseversion"].astype("Int64"),
            "receivedate": receivedate,
            "receiptdate": fda,
            "event_date": event.date,
            "event_date_precision": event.precision,
            "serious": pd.array(serious, dtype="Int64"),
            "reporttype": _text(demo["rept_cod"]),
            "occurcountry": country,
            "patientsex": _text(demo["sex"]).str.upper().map(SEX_CODES).astype("Int64"),
            "age_years": age_years,
            "age_group": age_group.astype("string").fillna("unknown"),
            "weight_kg": weight,
            "is_duplicate_flagged": pd.array(np.zeros(len(demo), dtype=bool), dtype="boolean"),
            "data_version": demo["quarter"],
        }
    )
    return model.conform(frame, model.REPORT_COLUMNS)


def _therapy_by_drug(ther: pd.DataFrame) -> pd.DataFrame:
    """One row per (primaryid, drug_seq): earliest start, latest end, summed duration."""
    start = parse_dates(ther["start_dt"], partial=True)
    end = parse_dates(ther["end_dt"], partial=True)
    dur = _number(ther["dur"]) * _text(ther["dur_cod"]).str.upper().map(DURATION_CODE_DAYS).astype("Float64")
    both_days = (start.precision == "day") & (end.precision == "day")
    from_dates = ((end.date - start.date).dt.days + 1).astype("Float64").where(both_days.fillna(False))
    duration = dur.fillna(from_dates)
    work = pd.DataFrame(
        {
            "primaryid": ther["primaryid"],
            "drug_seq": ther["drug_seq"],
            "start_date": start.date,
            "start_date_precision": start.precision,
            "end_date": end.date,
            "end_date_precision": end.precision,
            "end_last": period_end(end.date, end.precision),
            "duration": duration,
        }
    )
    keys = ["primaryid", "drug_seq"]
    rank = work["start_date_precision"].map({"day": 0, "month": 1, "year": 2}).astype("float64")
    first = (
        work.assign(_rank=rank)
        .sort_values([*keys, "start_date", "_rank"], na_position="last", kind="stable")
        .drop_duplicates(keys, keep="first")
        .set_index(keys)[["start_date", "start_date_precision"]]
    )
    last = (
        work.sort_values([*keys, "end_last"], na_position="first", kind="stable")
        .drop_duplicates(keys, keep="last")
        .set_index(keys)[["end_date", "end_date_precision"]]
    )
    total = work.groupby(keys, sort=False)["duration"].sum(min_count=1).rename("treatment_duration_days")
    return first.join(last).join(total)


def _cum_dose_mg(drug: pd.DataFrame, weight_kg: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(cum_dose_mg, cum_dose_chr present but not a number)."""
    if "cum_dose_chr" not in drug.columns:
        empty = pd.Series(pd.NA, index=drug.index, dtype="Float64")
        return empty, pd.Series(False, index=drug.index)
    raw = _text(drug["cum_dose_chr"])
    amount = pd.to_numeric(raw, errors="coerce").astype("Float64")
    unit = _text(drug["cum_dose_unit"]).str.upper().str.replace(" ", "", regex=False)
    mg = amount * unit.map(DOSE_UNIT_MG).astype("Float64")
    per_kg = amount * unit.map(DOSE_PER_KG_UNIT_MG).astype("Float64") * weight_kg
    mg = mg.fillna(per_kg)
    return mg.mask(mg < 0), raw.notna() & amount.isna()


def _drugs(
    drug: pd.DataFrame,
    ther: pd.DataFrame,
    reports: pd.DataFrame,
    drug_config: Mapping[str, Any],
    notes: _Notes,
    files: Mapping[tuple[str, str], str],
) -> pd.DataFrame:
    ids = drug["primaryid"].astype("string")
    therapy = _therapy_by_drug(ther)
    keyed = pd.MultiIndex.from_arrays([drug["primaryid"], drug["drug_seq"]])
    therapy = therapy.reindex(keyed)
    by_report = reports.set_index("safetyreportid")
    event_date = by_report["event_date"].reindex(ids).to_numpy()
    event_precision = pd.Series(by_report["event_date_precision"].reindex(ids).to_numpy(), index=drug.index)
    weight = pd.Series(by_report["weight_kg"].reindex(ids).to_numpy(), index=drug.index, dtype="Float64")

    start = pd.Series(therapy["start_date"].to_numpy(), index=drug.index).astype("datetime64[s]")
    start_precision = pd.Series(therapy["start_date_precision"].to_numpy(), index=drug.index, dtype="string")
    tto = (pd.Series(event_date, index=drug.index).astype("datetime64[s]") - start).dt.days.astype("Float64")
    rank = np.maximum(
        event_precision.map({"day": 0, "month": 1, "year": 2}).astype("float64").to_numpy(),
        start_precision.map({"day": 0, "month": 1, "year": 2}).astype("float64").to_numpy(),
    )
    tto_precision = pd.Series(rank, index=drug.index).map({0.0: "day", 1.0: "month", 2.0: "year"})
    tto_precision = tto_precision.astype("string").mask(tto.isna())

    cum_dose, bad_dose = _cum_dose_mg(drug, weight)
    if "cum_dose_chr" in drug.columns:
        notes.add("DRUG", ids, "cum_dose_chr", drug["cum_dose_chr"], bad_dose, "is not a number",
                  _source_files(drug, "DRUG", files), drug["line_number"])  # fmt: skip
    role = _text(drug["role_cod"]).str.upper()
    frame = pd.DataFrame(
        {
            "source": SOURCE,
            "safetyreportid": ids,
            "drug_seq": drug["drug_seq"].astype("Int64"),
            "medicinalproduct": _text(drug["drugname"]),
            "role": role,
            "drugcharacterization": role.map(ROLE_CHARACTERIZATION).astype("Int64"),
            "start_date": start,
            "start_date_precision": start_precision,
            "end_date": pd.Series(therapy["end_date"].to_numpy(), index=drug.index).astype("datetime64[s]"),
            "end_date_precision": pd.Series(
                therapy["end_date_precision"].to_numpy(), index=drug.index, dtype="string"
            ),
            "treatment_duration_days": pd.Series(
                therapy["treatment_duration_days"].to_numpy(), index=drug.index, dtype="Float64"
            ),
            "cum_dose_mg": cum_dose,
            "tto_days": tto,
            "tto_precision": tto_precision,
            ACTIVE_SUBSTANCE_COLUMN: _text(drug["prod_ai"]) if "prod_ai" in drug.columns else None,
        }
    )
    return model.conform(normalize_drugs(frame, drug_config), model.DRUG_COLUMNS)


def _reactions(reac: pd.DataFrame) -> pd.DataFrame:
    ordered = reac.sort_values(["primaryid", "line_number"], kind="stable")
    frame = pd.DataFrame(
        {
            "source": SOURCE,
            "safetyreportid": ordered["primaryid"].astype("string"),
            "reaction_seq": (ordered.groupby("primaryid", sort=False).cumcount() + 1).astype("Int64"),
            "pt_verbatim": _text(ordered["pt"]),
            "reactionoutcome": pd.array([pd.NA] * len(ordered), dtype="Int64"),
        }
    )
    return model.conform(normalize_reactions(frame), model.REACTION_COLUMNS)


def _extra(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in ("caseid",) if c in frame.columns]).copy()
    out.insert(0, "source", SOURCE)
    out.insert(1, "safetyreportid", out.pop("primaryid").astype("string"))
    return out.reset_index(drop=True)


def normalize_faers(
    result: DedupResult,
    *,
    drug_config: Mapping[str, Any],
    source_files: Mapping[tuple[str, str], str] | None = None,
) -> FaersBatch:
    """Map deduplicated quarters to the canonical tables; `source_files` maps (quarter, table) -> file."""
    files = dict(source_files or {})
    notes = _Notes()
    tables = result.tables
    reports = _reports(tables["DEMO"], tables["OUTC"], notes, files)
    drugs = _drugs(tables["DRUG"], tables["THER"], reports, drug_config, notes, files)
    reactions = _reactions(tables["REAC"])
    no_pt = reactions["pt_verbatim"].isna()
    extras = {name: _extra(tables[table]) for table, name in EXTRA_TABLES.items()}
    quarantine = notes.frame()
    target = drugs.loc[drugs["is_target_drug"].fillna(False).astype(bool), "safetyreportid"]
    stats = {
        "reports": len(reports),
        "drugs": len(drugs),
        "reactions": len(reactions),
        "reactions_without_pt": int(no_pt.sum()),
        "pt_known": int(reactions["pt_known"].fillna(False).sum()),
        "drugs_unmapped": int((drugs["substance_match"] == "unmapped").sum()),
        "target_drug_rows": len(target),
        "target_reports": int(target.nunique()),
        "values_nulled": len(quarantine),
    }
    return FaersBatch(reports, drugs, reactions, quarantine, extras, stats, terms_version())
