"""openFDA drug/event records -> the canonical staged tables.

Records are flattened in one pass into plain column lists (the only per-record Python work). Every
parse after that runs once per distinct value (dates, codes, units, ages repeat heavily) and is
broadcast back with numpy, so a bulk quarter of a million reactions normalizes in seconds.

Decisions (see docs/data-quality.md):
- role: openFDA's drugcharacterization cannot tell primary from secondary suspect, so 1 -> 'S'
  (suspect), 2 -> 'C' (concomitant), 3 -> 'I' (interacting). FAERS ASCII keeps PS/SS.
- A record without safetyreportid or with a receivedate that is not a YYYYMMDD date cannot be placed
  in a window or deduplicated: it is rejected to quarantine, and the rest of the batch still loads.
- A bad non-key value (unknown unit, impossible age, unparseable drug date) is set to null and the
  original value goes to quarantine with action 'nulled': the report still counts.
- Dedup keeps the highest safetyreportversion per safetyreportid (ties: the later receiptdate, then the
  later record). `duplicate == 1` only says earlier versions exist, so those reports are kept and
  flagged is_duplicate_flagged, and counted in stats.
- Reactions without a reactionmeddrapt are rejected to quarantine; their report stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from normalization import model
from normalization.drugs import ACTIVE_SUBSTANCE_COLUMN, GENERIC_NAME_COLUMN, normalize_drugs
from normalization.terms import normalize_reactions, terms_version

STAGE = "normalize"

AGE_UNIT_YEARS = {
    "800": 10.0,
    "801": 1.0,
    "802": 1 / 12,
    "803": 7 / 365.25,
    "804": 1 / 365.25,
    "805": 1 / 8766,
}
DURATION_UNIT_DAYS = {"801": 365.25, "802": 30.4375, "803": 7.0, "804": 1.0, "805": 1 / 24, "806": 1 / 1440}
DOSE_UNIT_MG = {"001": 1e6, "002": 1e3, "003": 1.0, "004": 1e-3}
ROLES = {1: "S", 2: "C", 3: "I"}
AGE_BINS = [0, 12, 18, 30, 45, 65, np.inf]
AGE_LABELS = ["0-11", "12-17", "18-29", "30-44", "45-64", "65+"]
MAX_AGE_YEARS = 120.0
MAX_WEIGHT_KG = 650.0
_PRECISION_RANK = {"day": 0, "month": 1, "year": 2}
_EVENT_DATE = r"CASE EVENT DATE:\s*(\d{4,8})"

_EVENT_DATE_RE = re.compile(_EVENT_DATE)
_NAT = np.datetime64("NaT", "s")


@dataclass
class NormalizedBatch:
    reports: pd.DataFrame
    drugs: pd.DataFrame
    reactions: pd.DataFrame
    quarantine: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)
    terms_version: str = ""


class _Issues:
    """Collects quarantine rows; each names the record, the field and the offending value."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def add(
        self,
        dataset: str,
        ids: Iterable[Any],
        field_name: str,
        values: Iterable[Any],
        reasons: Iterable[str],
        action: str,
    ) -> None:
        ids, values, reasons = list(ids), list(values), list(reasons)
        if not ids:
            return
        self.frames.append(
            pd.DataFrame(
                {
                    "stage": STAGE,
                    "dataset": dataset,
                    "record_id": pd.array([_str(v) for v in ids], dtype="string"),
                    "field": field_name,
                    "value": pd.array([_str(v) for v in values], dtype="string"),
                    "reason": pd.array(reasons, dtype="string"),
                    "action": action,
                }
            )
        )

    def table(self) -> pd.DataFrame:
        if not self.frames:
            return model.empty_table("quarantine")
        return model.conform(pd.concat(self.frames, ignore_index=True), model.QUARANTINE_COLUMNS)


def _str(value: Any) -> str | None:
    """A raw JSON value as trimmed text; None for missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _per_value(values: np.ndarray, parse: Callable[[Any], tuple], n_out: int) -> list[np.ndarray]:
    """Apply `parse` once per distinct raw value and broadcast its outputs to every row.

    `parse(None)` gives the outputs for missing values. Returns one object array per output.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = [parse(u) for u in uniques] + [parse(None)]
    return [np.array([p[i] for p in parsed], dtype=object)[codes] for i in range(n_out)]


def _parse_date(value: Any) -> tuple[Any, str | None, bool]:
    """'20240105' / '202401' / '2024' -> (datetime64[s], precision, bad)."""
    text = _str(value)
    if text is None:
        return _NAT, None, False
    if text.isdigit() and len(text) in (4, 6, 8):
        year, month, day = int(text[:4]), int(text[4:6] or 1), int(text[6:8] or 1)
        try:
            parsed = date(year, month, day)
        except ValueError:
            return _NAT, None, True
        return np.datetime64(parsed, "s"), {8: "day", 6: "month", 4: "year"}[len(text)], False
    return _NAT, None, True


def _parse_number(value: Any) -> tuple[float, bool]:
    text = _str(value)
    if text is None:
        return np.nan, False
    try:
        number = float(text)
    except ValueError:
        return np.nan, True
    return (number, False) if np.isfinite(number) else (np.nan, True)


def _code_parser(allowed: Iterable[int]) -> Callable[[Any], tuple[float, bool]]:
    allowed = frozenset(allowed)

    def parse(value: Any) -> tuple[float, bool]:
        number, bad = _parse_number(value)
        if np.isnan(number):
            return np.nan, bad
        return (number, False) if number in allowed else (np.nan, True)

    return parse


def _dates(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dates, precision, bad = _per_value(values, _parse_date, 3)
    return dates.astype("datetime64[s]"), precision, bad.astype(bool)


def _numbers(values: np.ndarray, parse: Callable[[Any], tuple[float, bool]] = _parse_number):
    number, bad = _per_value(values, parse, 2)
    return number.astype("float64"), bad.astype(bool)


def _factor(values: np.ndarray, table: Mapping[str, float]) -> np.ndarray:
    """Unit code -> multiplier (NaN when missing or unknown)."""
    (factor,) = _per_value(values, lambda v: (table.get(_str(v) or "", np.nan),), 1)
    return factor.astype("float64")


def _int_array(values: np.ndarray) -> pd.arrays.IntegerArray:
    mask = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(mask, 0, values).astype("int64"), mask)


def _float_array(values: np.ndarray) -> pd.arrays.FloatingArray:
    values = np.asarray(values, dtype="float64")
    return pd.arrays.FloatingArray(values, np.isnan(values))


def _string_array(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Object array -> pandas string array, converting each distinct value once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    strings = pd.array([_str(u) for u in uniques], dtype="string")
    return strings.take(codes, allow_fill=True)


def _seq(pos: np.ndarray) -> np.ndarray:
    """1-based position within each run of equal `pos` (drug_seq / reaction_seq)."""
    if len(pos) == 0:
        return np.zeros(0, dtype="int64")
    new_run = np.r_[True, pos[1:] != pos[:-1]]
    starts = np.flatnonzero(new_run)
    return np.arange(len(pos)) - starts[np.cumsum(new_run) - 1] + 1


class _Flat:
    """Column arrays of one batch; `pos` (record position) links drugs and reactions to their record."""

    REPORT = ("safetyreportid", "safetyreportversion", "receivedate", "receiptdate", "serious", "reporttype",
              "occurcountry", "duplicate")  # fmt: skip
    PATIENT = ("patientsex", "patientonsetage", "patientonsetageunit", "patientweight")
    DRUG = ("medicinalproduct", "drugcharacterization", "drugstartdate", "drugenddate", "drugtreatmentduration",
            "drugtreatmentdurationunit", "drugcumulativedosagenumb", "drugcumulativedosageunit")  # fmt: skip
    REPORT_COLUMNS = (*REPORT, *PATIENT, "narrative")
    DRUG_COLUMNS = (*DRUG, GENERIC_NAME_COLUMN, ACTIVE_SUBSTANCE_COLUMN)
    REACTION_COLUMNS = ("reactionmeddrapt", "reactionoutcome")

    def __init__(self) -> None:
        self.records_in = 0
        self.report_pos: list[int] = []
        self.report_rows: list[tuple] = []
        self.drug_pos: list[int] = []
        self.drug_rows: list[tuple] = []
        self.reaction_pos: list[int] = []
        self.reaction_rows: list[tuple] = []

    @staticmethod
    def columns(pos: list[int], rows: list[tuple], names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Row tuples -> one object array per column (numpy transposes in C)."""
        out: dict[str, np.ndarray] = {"pos": np.array(pos, dtype="int64")}
        table = np.empty((len(rows), len(names)), dtype=object)
        try:
            table[:] = rows if rows else table
        except ValueError:  # a value that is itself a sequence: fall back to a Python transpose
            for j, values in enumerate(zip(*rows, strict=True)):
                column = np.empty(len(rows), dtype=object)
                column[:] = list(values)
                table[:, j] = column
        for j, name in enumerate(names):
            out[name] = table[:, j]
        return out


def _joined(names: Any) -> Any:
    return "|".join(map(str, names)) if isinstance(names, list) else names


def _flatten(records: Iterable[Mapping[str, Any]], issues: _Issues) -> _Flat:
    flat = _Flat()
    report_keys, patient_keys, drug_keys = _Flat.REPORT, _Flat.PATIENT, _Flat.DRUG
    pos = -1
    for pos, rec in enumerate(records):
        try:
            patient = rec.get("patient") or {}
            report = (
                *map(rec.get, report_keys),
                *map(patient.get, patient_keys),
                (patient.get("summary") or {}).get("narrativeincludeclinical"),
            )
            drugs = [
                (
                    *map(d.get, drug_keys),
                    _joined((d.get("openfda") or {}).get("generic_name")),
                    (d.get("activesubstance") or {}).get("activesubstancename"),
                )
                for d in patient.get("drug") or ()
            ]
            reactions = [
                (r.get("reactionmeddrapt"), r.get("reactionoutcome")) for r in patient.get("reaction") or ()
            ]
        except (AttributeError, TypeError) as exc:
            rid = rec.get("safetyreportid") if isinstance(rec, Mapping) else None
            label = f"safetyreportid {rid}" if rid else f"record #{pos}"
            issues.add("reports", [rid or f"record #{pos}"], "<record>", [repr(rec)[:200]],
                       [f"{label}: malformed openFDA record ({exc})"], "rejected")  # fmt: skip
            continue
        flat.report_pos.append(pos)
        flat.report_rows.append(report)
        flat.drug_pos.extend([pos] * len(drugs))
        flat.drug_rows.extend(drugs)
        flat.reaction_pos.extend([pos] * len(reactions))
        flat.reaction_rows.extend(reactions)
    flat.records_in = pos + 1
    return flat


def _objects(values: list[Any]) -> np.ndarray:
    return np.fromiter(values, dtype=object, count=len(values))


def _flatten_fast(records: list[Any]) -> tuple[dict[str, np.ndarray], ...]:
    """Column-at-a-time flattening (several times faster than per record) for well-formed records.

    Raises AttributeError/TypeError on any malformed record; the caller then uses `_flatten`.
    """
    patients = [r.get("patient") or {} for r in records]
    rep = {k: [r.get(k) for r in records] for k in _Flat.REPORT}
    rep.update({k: [p.get(k) for p in patients] for k in _Flat.PATIENT})
    rep["narrative"] = [(p.get("summary") or {}).get("narrativeincludeclinical") for p in patients]
    drug_lists = [p.get("drug") or () for p in patients]
    reaction_lists = [p.get("reaction") or () for p in patients]
    drugs = [d for entries in drug_lists for d in entries]
    reactions = [r for entries in reaction_lists for r in entries]
    drug_columns = {k: [d.get(k) for d in drugs] for k in _Flat.DRUG}
    generic = [(d.get("openfda") or {}).get("generic_name") for d in drugs]
    # a list of non-strings makes join raise TypeError: the per-record path handles that record
    drug_columns[GENERIC_NAME_COLUMN] = ["|".join(g) if g.__class__ is list else g for g in generic]
    drug_columns[ACTIVE_SUBSTANCE_COLUMN] = [
        (d.get("activesubstance") or {}).get("activesubstancename") for d in drugs
    ]
    reaction_columns = {
        "reactionmeddrapt": [r.get("reactionmeddrapt") for r in reactions],
        "reactionoutcome": [r.get("reactionoutcome") for r in reactions],
    }
    pos = np.arange(len(records), dtype="int64")
    counts = (np.fromiter(map(len, drug_lists), "int64", len(records)),
              np.fromiter(map(len, reaction_lists), "int64", len(records)))  # fmt: skip
    out = []
    for columns, repeat in ((rep, None), (drug_columns, counts[0]), (reaction_columns, counts[1])):
        arrays = {"pos": pos if repeat is None else np.repeat(pos, repeat)}
        arrays.update({k: _objects(v) for k, v in columns.items()})
        out.append(arrays)
    return tuple(out)


def _flatten_all(records: Iterable[Mapping[str, Any]], issues: _Issues):
    """(reports, drugs, reactions) column arrays and the number of records read."""
    records = records if isinstance(records, list) else list(records)
    try:
        rep, dr, rx = _flatten_fast(records)
        return rep, dr, rx, len(records)
    except (AttributeError, TypeError):
        pass  # some record is malformed: go record by record so it alone is quarantined
    flat = _flatten(records, issues)
    rep = _Flat.columns(flat.report_pos, flat.report_rows, _Flat.REPORT_COLUMNS)
    dr = _Flat.columns(flat.drug_pos, flat.drug_rows, _Flat.DRUG_COLUMNS)
    rx = _Flat.columns(flat.reaction_pos, flat.reaction_rows, _Flat.REACTION_COLUMNS)
    return rep, dr, rx, flat.records_in


def _nulled(
    issues: _Issues,
    dataset: str,
    ids: np.ndarray,
    field_name: str,
    raw: np.ndarray,
    bad: np.ndarray,
    what: str,
) -> int:
    """Quarantine rows (action 'nulled') for values set to null; returns how many."""
    where = np.flatnonzero(bad)
    if len(where) == 0:
        return 0
    bad_ids, values = ids[where], [_str(v) for v in raw[where]]
    reasons = [f"safetyreportid {i}: {field_name} '{v}' {what}" for i, v in zip(bad_ids, values, strict=True)]
    issues.add(dataset, bad_ids, field_name, values, reasons, "nulled")
    return len(where)


def normalize_openfda_reports(
    records: Iterable[Mapping[str, Any]],
    *,
    source: str,
    data_version: str,
    drug_config: Mapping[str, Any],
) -> NormalizedBatch:
    """Flatten, parse, deduplicate and map openFDA drug/event records; nothing is dropped silently."""
    if source not in model.SOURCES:
        raise ValueError(f"source {source!r} is not one of {model.SOURCES}")
    issues = _Issues()
    rep, dr, rx, records_in = _flatten_all(records, issues)
    malformed = records_in - len(rep["pos"])
    nulled = 0

    # --- record-level rejection: no id, or no receivedate that is a full YYYYMMDD date
    (ids,) = _per_value(rep["safetyreportid"], lambda v: (_str(v),), 1)
    no_id = pd.isna(ids)
    for pos, value in zip(rep["pos"][no_id], rep["safetyreportid"][no_id], strict=True):
        issues.add("reports", [f"record #{pos}"], "safetyreportid", [value],
                   [f"record #{pos}: safetyreportid is missing"], "rejected")  # fmt: skip
    received, received_precision, _ = _dates(rep["receivedate"])
    bad_received = ~no_id & (received_precision != "day")
    for rid, value in zip(ids[bad_received], rep["receivedate"][bad_received], strict=True):
        issues.add("reports", [rid], "receivedate", [value],
                   [f"safetyreportid {rid}: receivedate '{_str(value) or ''}' is not a YYYYMMDD date"],
                   "rejected")  # fmt: skip
    keep = ~no_id & ~bad_received
    rejected = int((~keep).sum())

    # --- dedup: highest version per safetyreportid; ties -> later receiptdate, then later record
    receipt, _, bad_receipt = _dates(rep["receiptdate"])
    version, bad_version = _numbers(rep["safetyreportversion"], _code_parser(range(0, 100_000)))
    candidates = pd.DataFrame({"id": ids, "version": version, "receipt": receipt, "pos": rep["pos"]}).loc[
        keep
    ]
    latest = candidates.sort_values(["id", "version", "receipt", "pos"], na_position="first", kind="stable")
    latest = latest.drop_duplicates("id", keep="last").sort_values("pos")
    duplicates_removed = len(candidates) - len(latest)
    rows = latest.index.to_numpy()  # rows of `rep` that become reports, in input order
    rep_ids = ids[rows]

    def take(name: str) -> np.ndarray:
        return rep[name][rows]

    nulled += _nulled(issues, "reports", rep_ids, "receiptdate", take("receiptdate"), bad_receipt[rows],
                      "is not a date")  # fmt: skip
    nulled += _nulled(issues, "reports", rep_ids, "safetyreportversion", take("safetyreportversion"),
                      bad_version[rows], "is not a version number")  # fmt: skip
    (narrative_date,) = _per_value(take("narrative"), lambda v: (_event_date_text(v),), 1)
    event_date, event_precision, bad_event = _dates(narrative_date)
    nulled += _nulled(issues, "reports", rep_ids, "narrativeincludeclinical", narrative_date, bad_event,
                      "is not a CASE EVENT DATE")  # fmt: skip
    serious, bad_serious = _numbers(take("serious"), _code_parser((1, 2)))
    nulled += _nulled(issues, "reports", rep_ids, "serious", take("serious"), bad_serious, "is not 1 or 2")
    sex, bad_sex = _numbers(take("patientsex"), _code_parser((0, 1, 2)))
    nulled += _nulled(
        issues, "reports", rep_ids, "patientsex", take("patientsex"), bad_sex, "is not 0, 1 or 2"
    )

    age_raw, unit_raw = take("patientonsetage"), take("patientonsetageunit")
    age, bad_age_number = _numbers(age_raw)
    nulled += _nulled(
        issues, "reports", rep_ids, "patientonsetage", age_raw, bad_age_number, "is not a number"
    )
    factor = _factor(unit_raw, AGE_UNIT_YEARS)
    bad_unit = ~np.isnan(age) & np.isnan(factor)
    unit_shown = np.array([_str(u) or "<missing>" for u in unit_raw[bad_unit]], dtype=object)
    nulled += _nulled(issues, "reports", rep_ids[bad_unit], "patientonsetageunit", unit_shown,
                      np.ones(len(unit_shown), dtype=bool), "is not an age unit (800-805)")  # fmt: skip
    age_years = age * factor
    with np.errstate(invalid="ignore"):
        implausible = (age_years < 0) | (age_years > MAX_AGE_YEARS)
    shown = np.array([f"{_str(a)} unit {_str(u) or ''}" for a, u in zip(age_raw, unit_raw, strict=True)]
                     if implausible.any() else [], dtype=object)  # fmt: skip
    nulled += _nulled(issues, "reports", rep_ids, "patientonsetage", shown if len(shown) else age_raw, implausible,
                      f"is not a plausible age (0-{MAX_AGE_YEARS:g} years)")  # fmt: skip
    age_years = np.where(implausible, np.nan, age_years)
    group_index = np.searchsorted(np.array(AGE_BINS[1:-1]), age_years, side="right")
    age_group = np.where(
        np.isnan(age_years), "unknown", np.array(AGE_LABELS, dtype=object)[np.minimum(group_index, 5)]
    )

    weight, bad_weight = _numbers(take("patientweight"))
    with np.errstate(invalid="ignore"):
        implausible_weight = (weight <= 0) | (weight > MAX_WEIGHT_KG)
    nulled += _nulled(issues, "reports", rep_ids, "patientweight", take("patientweight"),
                      bad_weight | implausible_weight, f"is not a plausible weight (0-{MAX_WEIGHT_KG:g} kg)")  # fmt: skip
    weight = np.where(implausible_weight, np.nan, weight)
    (flagged,) = _per_value(take("duplicate"), lambda v: (_str(v) == "1",), 1)
    (country,) = _per_value(take("occurcountry"), lambda v: ((_str(v) or "").upper() or None,), 1)

    n_reports = len(rows)
    reports = pd.DataFrame(
        {
            "source": pd.array([source] * n_reports, dtype="string"),
            "safetyreportid": (report_id_strings := pd.array(rep_ids, dtype="string")),
            "caseid": report_id_strings,
            "safetyreportversion": _int_array(version[rows]),
            "receivedate": received[rows],
            "receiptdate": receipt[rows],
            "event_date": event_date,
            "event_date_precision": _string_array(event_precision),
            "serious": _int_array(serious),
            "reporttype": _string_array(take("reporttype")),
            "occurcountry": _string_array(country),
            "patientsex": _int_array(sex),
            "age_years": _float_array(age_years),
            "age_group": _string_array(age_group),
            "weight_kg": _float_array(weight),
            "is_duplicate_flagged": pd.array(flagged.astype(bool), dtype="boolean"),
            "data_version": pd.array([data_version] * n_reports, dtype="string"),
        }
    )
    reports = model.conform(reports, model.REPORT_COLUMNS)
    report_ids = reports["safetyreportid"].array

    # record position -> row in `reports` (or -1 when the record was rejected or superseded)
    row_of_pos = np.full(max(records_in, 1), -1, dtype="int64")
    row_of_pos[rep["pos"][rows]] = np.arange(n_reports)

    # --- reactions of kept reports
    rx_seq_all = _seq(rx["pos"])
    rx_row_all = row_of_pos[rx["pos"]] if len(rx["pos"]) else np.zeros(0, dtype="int64")
    in_report = rx_row_all >= 0
    (verbatim_all,) = _per_value(rx["reactionmeddrapt"][in_report], lambda v: (_str(v),), 1)
    rx_ids_all = rep_ids[rx_row_all[in_report]]
    rx_seq_in = rx_seq_all[in_report]
    no_pt = pd.isna(verbatim_all)
    if no_pt.any():
        raw_pts = rx["reactionmeddrapt"][in_report][no_pt]
        reasons = [f"safetyreportid {i}: reaction {s} has no reactionmeddrapt"
                   for i, s in zip(rx_ids_all[no_pt], rx_seq_in[no_pt], strict=True)]  # fmt: skip
        issues.add("reactions", rx_ids_all[no_pt], "reactionmeddrapt", raw_pts, reasons, "rejected")
    has_pt = ~no_pt
    rx_ids = rx_ids_all[has_pt]
    outcome_raw = rx["reactionoutcome"][in_report][has_pt]
    outcome, bad_outcome = _numbers(outcome_raw, _code_parser(range(1, 7)))
    nulled += _nulled(issues, "reactions", rx_ids, "reactionoutcome", outcome_raw, bad_outcome,
                      "is not an outcome code 1-6")  # fmt: skip
    reactions = pd.DataFrame(
        {
            "source": pd.array([source] * len(rx_ids), dtype="string"),
            "safetyreportid": report_ids.take(rx_row_all[in_report][has_pt]),
            "reaction_seq": _int_array(rx_seq_in[has_pt].astype("float64")),
            # verbatim as received; only surrounding whitespace is trimmed
            "pt_verbatim": _string_array(verbatim_all[has_pt]),
            "reactionoutcome": _int_array(outcome),
        }
    )
    reactions = model.conform(normalize_reactions(reactions), model.REACTION_COLUMNS)

    # --- drugs of kept reports
    dr_seq_all = _seq(dr["pos"])
    dr_row_all = row_of_pos[dr["pos"]] if len(dr["pos"]) else np.zeros(0, dtype="int64")
    in_report = dr_row_all >= 0
    if not in_report.all():
        dr = {k: v[in_report] for k, v in dr.items()}
    dr_row = dr_row_all[in_report]
    dr_ids = rep_ids[dr_row]
    characterization, bad_char = _numbers(dr["drugcharacterization"], _code_parser((1, 2, 3)))
    nulled += _nulled(issues, "drugs", dr_ids, "drugcharacterization", dr["drugcharacterization"], bad_char,
                      "is not 1, 2 or 3")  # fmt: skip
    start, start_precision, bad_start = _dates(dr["drugstartdate"])
    end, end_precision, bad_end = _dates(dr["drugenddate"])
    nulled += _nulled(
        issues, "drugs", dr_ids, "drugstartdate", dr["drugstartdate"], bad_start, "is not a date"
    )
    nulled += _nulled(issues, "drugs", dr_ids, "drugenddate", dr["drugenddate"], bad_end, "is not a date")
    duration, bad_duration = _numbers(dr["drugtreatmentduration"])
    duration_factor = _factor(dr["drugtreatmentdurationunit"], DURATION_UNIT_DAYS)
    nulled += _nulled(issues, "drugs", dr_ids, "drugtreatmentduration", dr["drugtreatmentduration"], bad_duration,
                      "is not a number")  # fmt: skip
    bad_duration_unit = ~np.isnan(duration) & np.isnan(duration_factor)
    nulled += _nulled(issues, "drugs", dr_ids, "drugtreatmentdurationunit",
                      np.array([_str(u) or "<missing>" for u in dr["drugtreatmentdurationunit"]], dtype=object)
                      if bad_duration_unit.any() else dr["drugtreatmentdurationunit"],
                      bad_duration_unit, "is not a duration unit (801-806)")  # fmt: skip
    dose, bad_dose = _numbers(dr["drugcumulativedosagenumb"])
    dose_factor = _factor(dr["drugcumulativedosageunit"], DOSE_UNIT_MG)
    nulled += _nulled(issues, "drugs", dr_ids, "drugcumulativedosagenumb", dr["drugcumulativedosagenumb"],
                      bad_dose, "is not a number")  # fmt: skip
    bad_dose_unit = ~np.isnan(dose) & np.isnan(dose_factor)
    nulled += _nulled(issues, "drugs", dr_ids, "drugcumulativedosageunit",
                      np.array([_str(u) or "<missing>" for u in dr["drugcumulativedosageunit"]], dtype=object)
                      if bad_dose_unit.any() else dr["drugcumulativedosageunit"],
                      bad_dose_unit, "is not a dose unit (001-004)")  # fmt: skip

    drug_event = event_date[dr_row]
    delta = drug_event - start
    tto = np.where(np.isnat(delta), np.nan, delta.astype("int64") / 86400.0)
    rank_event = _rank(event_precision[dr_row])
    rank_start = _rank(start_precision)
    rank = np.fmax(rank_event, rank_start)
    tto_precision = np.where(np.isnan(tto), None, np.array([None, "day", "month", "year"], dtype=object)[
        np.nan_to_num(rank, nan=-1).astype("int64") + 1])  # fmt: skip

    drugs = pd.DataFrame(
        {
            "source": pd.array([source] * len(dr_ids), dtype="string"),
            "safetyreportid": report_ids.take(dr_row),
            "drug_seq": _int_array(dr_seq_all[in_report].astype("float64")),
            "medicinalproduct": _string_array(dr["medicinalproduct"]),
            "role": _string_array(_role_names(characterization)),
            "drugcharacterization": _int_array(characterization),
            "start_date": start,
            "start_date_precision": _string_array(start_precision),
            "end_date": end,
            "end_date_precision": _string_array(end_precision),
            "treatment_duration_days": _float_array(duration * duration_factor),
            "cum_dose_mg": _float_array(dose * dose_factor),
            "tto_days": _float_array(tto),
            "tto_precision": _string_array(tto_precision),
            GENERIC_NAME_COLUMN: _string_array(dr[GENERIC_NAME_COLUMN]),
            ACTIVE_SUBSTANCE_COLUMN: _string_array(dr[ACTIVE_SUBSTANCE_COLUMN]),
        }
    )
    drugs = model.conform(normalize_drugs(drugs, drug_config), model.DRUG_COLUMNS)

    quarantine = issues.table()
    target = drugs["is_target_drug"].to_numpy(dtype=bool, na_value=False)
    stats = {
        "records_in": records_in,
        "malformed": malformed,
        "quarantined": rejected + malformed,
        "duplicates_removed": int(duplicates_removed),
        "reports_out": len(reports),
        "duplicate_flagged": int(reports["is_duplicate_flagged"].sum()),
        "reactions_in": len(verbatim_all),
        "reactions_quarantined": int(no_pt.sum()),
        "reactions": len(reactions),
        "pt_known": int(reactions["pt_known"].sum()),
        "pt_unknown": int((~reactions["pt_known"]).sum()),
        "drugs_in": len(dr_ids),
        "drugs": len(drugs),
        "drugs_unmapped": int((drugs["substance_match"] == "unmapped").sum()),
        "target_drug_rows": int(target.sum()),
        "target_reports": int(pd.unique(dr_ids[target]).size),
        "values_nulled": int(nulled),
        "quarantine_rows": len(quarantine),
    }
    return NormalizedBatch(reports, drugs, reactions, quarantine, stats, terms_version())


def _event_date_text(narrative: Any) -> str | None:
    text = _str(narrative)
    if text is None:
        return None
    match = _EVENT_DATE_RE.search(text)
    return match.group(1) if match else None


def _rank(precision: np.ndarray) -> np.ndarray:
    (rank,) = _per_value(precision, lambda v: (_PRECISION_RANK.get(v, np.nan) if v else np.nan,), 1)
    return rank.astype("float64")


def _role_names(characterization: np.ndarray) -> np.ndarray:
    names = np.array([None, "S", "C", "I"], dtype=object)
    return names[np.nan_to_num(characterization, nan=0).astype("int64")]


RAW_REPORT_COLUMNS = (
    "safetyreportid", "safetyreportversion", "receivedate", "receiptdate", "patientsex", "patientonsetage",
    "patientonsetageunit", "duplicate", "n_drugs", "n_reactions",
)  # fmt: skip


def raw_reports_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record as received (values as strings), for the raw_reports suite.

    Profiles the extract before any parsing, so a broken feed shows up as what the source sent.
    """
    rows = []
    for rec in records:
        if not isinstance(rec, Mapping):
            rows.append((None,) * 8 + (0, 0))
            continue
        patient = rec.get("patient") if isinstance(rec.get("patient"), Mapping) else {}
        drugs, reactions = patient.get("drug"), patient.get("reaction")
        rows.append(
            (
                rec.get("safetyreportid"),
                rec.get("safetyreportversion"),
                rec.get("receivedate"),
                rec.get("receiptdate"),
                patient.get("patientsex"),
                patient.get("patientonsetage"),
                patient.get("patientonsetageunit"),
                rec.get("duplicate"),
                len(drugs) if isinstance(drugs, list) else 0,
                len(reactions) if isinstance(reactions, list) else 0,
            )  # fmt: skip
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(RAW_REPORT_COLUMNS)
    frame = pd.DataFrame(
        {
            name: _string_array(np.array(values, dtype=object)) if i < 8 else pd.array(values, dtype="Int64")
            for i, (name, values) in enumerate(zip(RAW_REPORT_COLUMNS, columns, strict=True))
        }
    )
    return frame
