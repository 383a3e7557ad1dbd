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
PRECISION_RANK = {"day": 0, "month": 1, "year": 2}
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
    """Numbers from text; parsed only where a value is present (most FAERS numeric fields are empty)."""
    text = _text(values)
    out = pd.Series(pd.NA, index=values.index, dtype="Float64")
    present = text.notna()
    if present.any():
        out[present] = pd.to_numeric(text[present], errors="coerce").astype("Float64")
    return out


def _lookup(values: pd.Series, mapping: Mapping[str, float], dtype: str = "Float64") -> pd.Series:
    """Map a low-cardinality code column to numbers once per distinct value (Series.map is per row)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.array([mapping.get(u, np.nan) for u in uniques] + [np.nan], dtype="float64")  # code -1 -> NaN
    mapped = table[codes]
    out = pd.array(mapped, dtype="Float64")
    out[np.isnan(mapped)] = pd.NA
    return pd.Series(out if dtype == "Float64" else out.astype(dtype), index=values.index)


def _coarser(left: pd.Series, right: pd.Series) -> pd.Series:
    """The less precise of two precision columns (<NA> when either is missing)."""
    lrank = _lookup(left, PRECISION_RANK, "Float64").to_numpy(dtype="float64", na_value=np.nan)
    rrank = _lookup(right, PRECISION_RANK, "Float64").to_numpy(dtype="float64", na_value=np.nan)
    rank = np.maximum(lrank, rrank)
    names = np.array(["day", "month", "year", None], dtype=object)
    out = names[np.where(np.isnan(rank), 3, rank).astype(int)]
    return pd.Series(pd.array(out, dtype="string"), index=left.index)


class _Notes:
    """Values set to null during normalization ('nulled' quarantine rows: the row itself stays)."""

    def __init__(self, files: Mapping[tuple[str, str], str]) -> None:
        self.files = files
        self.parts: list[pd.DataFrame] = []

    def add(
        self, table: str, frame: pd.DataFrame, fld: str, values: pd.Series, bad: pd.Series, what: str
    ) -> int:
        """Record `values` where `bad` holds; `frame` gives primaryid, quarter and line_number."""
        bad = bad.fillna(False).astype(bool)
        if not bad.any():
            return 0
        value = values[bad].astype("string")
        rid = frame.loc[bad, "primaryid"].astype("string")
        by_quarter = {q: f for (q, t), f in self.files.items() if t == table}
        self.parts.append(
            pd.DataFrame(
                {
                    "stage": STAGE,
                    "dataset": f"faers_ascii/{table}",
                    "record_id": rid,
                    "field": fld,
                    "value": value,
                    "reason": "primaryid " + rid + f": {fld} '" + value.fillna("") + f"' {what}",
                    "source_file": frame.loc[bad, "quarter"].map(by_quarter).astype("string"),
                    "line_number": frame.loc[bad, "line_number"],
                    "action": "nulled",
                }
            )
        )
        return int(bad.sum())

    def frame(self) -> pd.DataFrame:
        return (
            quarantine_frame(pd.concat(self.parts, ignore_index=True)) if self.parts else quarantine_frame([])
        )


def _reports(demo: pd.DataFrame, outcome_ids: pd.Series, notes: _Notes) -> pd.DataFrame:
    event = parse_dates(demo["event_dt"], partial=True)
    fda = parse_dates(demo["fda_dt"], partial=False).date
    # legacy AERS has no init_fda_dt: its receivedate is the fda_dt of the version loaded
    receivedate = parse_dates(demo["init_fda_dt"], partial=False).date.fillna(fda)

    age = _number(demo["age"])
    age_code = _text(demo["age_cod"]).str.upper()
    age_years = age * _lookup(age_code, AGE_CODE_YEARS, "Float64")
    notes.add("DEMO", demo, "age_cod", age_code, age.notna() & age_years.isna(), "is not an age unit")
    implausible = (age_years < 0) | (age_years > MAX_AGE_YEARS)
    notes.add("DEMO", demo, "age", demo["age"].astype("string") + " " + age_code.fillna(""), implausible,
              f"is not a plausible age (0-{MAX_AGE_YEARS:g} years)")  # fmt: skip
    age_years = age_years.mask(implausible.fillna(False))
    age_group = pd.cut(age_years.astype("float64"), AGE_BINS, right=False, labels=AGE_LABELS)

    weight_code = _text(demo["wt_cod"]).str.upper()
    weight = _number(demo["wt"]) * _lookup(weight_code, WEIGHT_CODE_KG, "Float64")
    implausible_weight = (weight <= 0) | (weight > MAX_WEIGHT_KG)
    notes.add("DEMO", demo, "wt", demo["wt"].astype("string") + " " + weight_code.fillna(""), implausible_weight,
              f"is not a plausible weight (0-{MAX_WEIGHT_KG:g} kg)")  # fmt: skip
    weight = weight.mask(implausible_weight.fillna(False))

    frame = pd.DataFrame(
        {
            "source": SOURCE,
            "safetyreportid": demo["primaryid"].astype("string"),
            "caseid": demo["caseid"].astype("string"),
            "safetyreportversion": demo["caseversion"].astype("Int64"),
            "receivedate": receivedate,
            "receiptdate": fda,
            "event_date": event.date,
            "event_date_precision": event.precision,
            "serious": pd.array(np.where(demo["primaryid"].isin(outcome_ids), 1, 2), dtype="Int64"),
            "reporttype": _text(demo["rept_cod"]),
            "occurcountry": _text(demo["occr_country"]).str.upper(),
            "patientsex": _lookup(_text(demo["sex"]).str.upper(), SEX_CODES, "Int64"),
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
    dur = _number(ther["dur"]) * _lookup(_text(ther["dur_cod"]).str.upper(), DURATION_CODE_DAYS, "Float64")
    both_days = ((start.precision == "day") & (end.precision == "day")).fillna(False)
    from_dates = ((end.date - start.date).dt.days + 1).astype("Float64").where(both_days)
    work = pd.DataFrame(
        {
            "primaryid": ther["primaryid"],
            "drug_seq": ther["drug_seq"],
            "start_date": start.date,
            "start_date_precision": start.precision,
            "start_rank": _lookup(start.precision, PRECISION_RANK, "Float64"),
            "end_date": end.date,
            "end_date_precision": end.precision,
            "end_last": period_end(end.date, end.precision),
            "treatment_duration_days": dur.fillna(from_dates),
        }
    )
    keys = ["primaryid", "drug_seq"]
    first = work.sort_values(
        [*keys, "start_date", "start_rank"], na_position="last", kind="stable"
    ).drop_duplicates(keys, keep="first")[[*keys, "start_date", "start_date_precision"]]
    last = work.sort_values([*keys, "end_last"], na_position="first", kind="stable").drop_duplicates(
        keys, keep="last"
    )[[*keys, "end_date", "end_date_precision"]]
    total = work.groupby(keys, sort=False, as_index=False)["treatment_duration_days"].sum(min_count=1)
    return first.merge(last, on=keys).merge(total, on=keys)


def _cum_dose_mg(drug: pd.DataFrame, weight_kg: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(cum_dose_mg, cum_dose_chr present but not a number)."""
    amount = _number(drug["cum_dose_chr"])
    unit = _text(drug["cum_dose_unit"]).str.upper().str.replace(" ", "", regex=False)
    mg = amount * _lookup(unit, DOSE_UNIT_MG, "Float64")
    per_kg = amount * _lookup(unit, DOSE_PER_KG_UNIT_MG, "Float64") * weight_kg
    mg = mg.fillna(per_kg)
    return mg.mask(mg < 0), _text(drug["cum_dose_chr"]).notna() & amount.isna()


def _drugs(drug: pd.DataFrame, ther: pd.DataFrame, reports: pd.DataFrame, demo_ids: pd.Series,
           drug_config: Mapping[str, Any], notes: _Notes) -> pd.DataFrame:  # fmt: skip
    therapy = drug[["primaryid", "drug_seq"]].merge(
        _therapy_by_drug(ther), how="left", on=["primaryid", "drug_seq"]
    )
    therapy.index = drug.index
    position = pd.Index(demo_ids).get_indexer(drug["primaryid"])  # int64 index: fast, every drug has a report
    event_date = pd.Series(reports["event_date"].to_numpy()[position], index=drug.index)
    event_precision = pd.Series(reports["event_date_precision"].array.take(position), index=drug.index)
    weight = pd.Series(reports["weight_kg"].array.take(position), index=drug.index)

    start = therapy["start_date"].astype("datetime64[s]")
    tto = (event_date - start).dt.days.astype("Float64")
    tto_precision = _coarser(event_precision, therapy["start_date_precision"].astype("string")).mask(
        tto.isna()
    )

    cum_dose, bad_dose = _cum_dose_mg(drug, weight)
    notes.add("DRUG", drug, "cum_dose_chr", drug["cum_dose_chr"], bad_dose, "is not a number")
    role = _text(drug["role_cod"]).str.upper()
    frame = pd.DataFrame(
        {
            "source": SOURCE,
            "safetyreportid": drug["primaryid"].astype("string"),
            "drug_seq": drug["drug_seq"].astype("Int64"),
            "medicinalproduct": _text(drug["drugname"]),
            "role": role,
            "drugcharacterization": _lookup(role, ROLE_CHARACTERIZATION, "Int64"),
            "start_date": start,
            "start_date_precision": therapy["start_date_precision"].astype("string"),
            "end_date": therapy["end_date"].astype("datetime64[s]"),
            "end_date_precision": therapy["end_date_precision"].astype("string"),
            "treatment_duration_days": therapy["treatment_duration_days"].astype("Float64"),
            "cum_dose_mg": cum_dose,
            "tto_days": tto,
            "tto_precision": tto_precision,
            ACTIVE_SUBSTANCE_COLUMN: _text(drug["prod_ai"]),
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
    """A FAERS-only table as staged: keyed like the canonical tables, other columns verbatim."""
    out = frame.drop(columns=[c for c in ("caseid",) if c in frame.columns])
    out.insert(0, "source", SOURCE)
    out.insert(1, "safetyreportid", out.pop("primaryid").astype("string"))
    return out.reset_index(drop=True)


DEMO_COLUMNS = (
    "line_number", "primaryid", "caseid", "caseversion", "event_dt", "fda_dt", "init_fda_dt", "age", "age_cod",
    "wt", "wt_cod", "sex", "rept_cod", "occr_country",
)  # fmt: skip
DRUG_COLUMNS = (
    "line_number", "primaryid", "drug_seq", "drugname", "prod_ai", "role_cod", "cum_dose_chr", "cum_dose_unit",
)  # fmt: skip
REAC_COLUMNS = ("line_number", "primaryid", "pt")


def normalize_faers(
    result: DedupResult,
    *,
    drug_config: Mapping[str, Any],
    source_files: Mapping[tuple[str, str], str] | None = None,
    release_raw: bool = False,
) -> FaersBatch:
    """Map deduplicated quarters to the canonical tables.

    `source_files` maps (quarter, table) -> file name for quarantine rows (default: the files read).
    `release_raw` drops each raw table from the quarters once it has been used, so a full quarter is
    not held twice; the RawQuarter objects are then emptied.
    """
    files = dict(source_files or {})
    for quarter in result.quarters:
        for table, load in quarter.loads.items():
            files.setdefault((quarter.quarter, table), load.source_file)
    notes = _Notes(files)

    therapies = result.table("THER")
    extras = {
        name: _extra(therapies if table == "THER" else result.table(table))
        for table, name in EXTRA_TABLES.items()
    }
    if release_raw:
        result.release(*EXTRA_TABLES)
    demo = result.table("DEMO", DEMO_COLUMNS)
    reports = _reports(demo, extras["outcomes"]["safetyreportid"].astype("int64"), notes)
    drug = result.table("DRUG", DRUG_COLUMNS)
    if release_raw:
        result.release("DEMO", "DRUG")
    drugs = _drugs(drug, therapies, reports, demo["primaryid"], drug_config, notes)
    del drug, therapies, demo
    reactions = _reactions(result.table("REAC", REAC_COLUMNS))
    if release_raw:
        result.release("REAC")
    quarantine = notes.frame()
    target = drugs.loc[drugs["is_target_drug"].fillna(False).astype(bool), "safetyreportid"]
    stats = {
        "reports": len(reports),
        "drugs": len(drugs),
        "reactions": len(reactions),
        "pt_known": int(reactions["pt_known"].fillna(False).sum()),
        "drugs_unmapped": int((drugs["substance_match"] == "unmapped").sum()),
        "target_drug_rows": len(target),
        "target_reports": int(target.nunique()),
        "values_nulled": len(quarantine),
    }
    return FaersBatch(reports, drugs, reactions, quarantine, extras, stats, terms_version())
