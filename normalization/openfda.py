"""openFDA drug/event records -> the canonical staged tables.

Records are flattened in one pass into plain tuples (the only per-record Python work); every parse and
conversion after that is vectorized, so a weekly window or a bulk quarter normalizes at column speed.

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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

_REPORT_FIELDS = (
    "pos", "safetyreportid", "safetyreportversion", "receivedate", "receiptdate", "narrative", "serious",
    "reporttype", "occurcountry", "patientsex", "patientonsetage", "patientonsetageunit", "patientweight",
    "duplicate",
)  # fmt: skip
_DRUG_FIELDS = (
    "pos", "drug_seq", "medicinalproduct", "drugcharacterization", "drugstartdate", "drugenddate",
    "drugtreatmentduration", "drugtreatmentdurationunit", "drugcumulativedosagenumb",
    "drugcumulativedosageunit", GENERIC_NAME_COLUMN, ACTIVE_SUBSTANCE_COLUMN,
)  # fmt: skip
_REACTION_FIELDS = ("pos", "reaction_seq", "reactionmeddrapt", "reactionoutcome")


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
        ids: pd.Series,
        field_name: str,
        values: pd.Series,
        reason: str | pd.Series,
        action: str,
    ) -> None:
        if len(ids) == 0:
            return
        ids = ids.astype("string").reset_index(drop=True)
        values = values.astype("string").reset_index(drop=True)
        if isinstance(reason, pd.Series):
            reason = reason.astype("string").reset_index(drop=True)
        self.frames.append(
            pd.DataFrame(
                {
                    "stage": STAGE,
                    "dataset": dataset,
                    "record_id": ids,
                    "field": field_name,
                    "value": values,
                    "reason": reason,
                    "action": action,
                }
            )
        )

    def table(self) -> pd.DataFrame:
        if not self.frames:
            return model.empty_table("quarantine")
        return model.conform(pd.concat(self.frames, ignore_index=True), model.QUARANTINE_COLUMNS)


def _text(values: pd.Series) -> pd.Series:
    """Raw JSON values (str, int, None) as trimmed strings; blank -> <NA>."""
    out = values.astype("string").str.strip()
    return out.mask(out == "")


def parse_dates(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """YYYYMMDD / YYYYMM / YYYY -> (datetime64[s], precision day|month|year, mask of unparseable values)."""
    text = _text(raw)
    length = text.str.len()
    dates = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[s]")
    precision = pd.Series(pd.NA, index=raw.index, dtype="string")
    for n, fmt, label in ((8, "%Y%m%d", "day"), (6, "%Y%m", "month"), (4, "%Y", "year")):
        sel = (length == n).fillna(False).to_numpy()
        if sel.any():
            parsed = pd.to_datetime(text[sel], format=fmt, errors="coerce").astype("datetime64[s]")
            dates[sel] = parsed
            precision[sel] = pd.Series(label, index=parsed.index, dtype="string").mask(parsed.isna())
    bad = text.notna() & dates.isna()
    return dates, precision, bad


def _codes(raw: pd.Series, allowed: Iterable[int]) -> tuple[pd.Series, pd.Series]:
    """Coded integer field -> (Int64 with only allowed codes, mask of present-but-invalid values)."""
    text = _text(raw)
    number = pd.to_numeric(text, errors="coerce")
    valid = number.isin(list(allowed))
    out = number.where(valid).astype("Int64")
    return out, text.notna() & ~valid


def _numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = _text(raw)
    number = pd.to_numeric(text, errors="coerce").astype("Float64")
    number = number.mask(~np.isfinite(number.astype("float64").fillna(0.0)))
    return number, text.notna() & number.isna()


def _flatten(records: Iterable[Mapping[str, Any]], issues: _Issues) -> tuple[list, list, list, int]:
    reports: list[tuple] = []
    drugs: list[tuple] = []
    reactions: list[tuple] = []
    pos = -1
    for pos, rec in enumerate(records):
        try:
            patient = rec.get("patient") or {}
            summary = patient.get("summary") or {}
            reports.append(
                (
                    pos,
                    rec.get("safetyreportid"),
                    rec.get("safetyreportversion"),
                    rec.get("receivedate"),
                    rec.get("receiptdate"),
                    summary.get("narrativeincludeclinical"),
                    rec.get("serious"),
                    rec.get("reporttype"),
                    rec.get("occurcountry"),
                    patient.get("patientsex"),
                    patient.get("patientonsetage"),
                    patient.get("patientonsetageunit"),
                    patient.get("patientweight"),
                    rec.get("duplicate"),
                )  # fmt: skip
            )
            for seq, drug in enumerate(patient.get("drug") or (), 1):
                names = (drug.get("openfda") or {}).get("generic_name")
                drugs.append(
                    (
                        pos,
                        seq,
                        drug.get("medicinalproduct"),
                        drug.get("drugcharacterization"),
                        drug.get("drugstartdate"),
                        drug.get("drugenddate"),
                        drug.get("drugtreatmentduration"),
                        drug.get("drugtreatmentdurationunit"),
                        drug.get("drugcumulativedosagenumb"),
                        drug.get("drugcumulativedosageunit"),
                        "|".join(names) if isinstance(names, list) else names,
                        (drug.get("activesubstance") or {}).get("activesubstancename"),
                    )  # fmt: skip
                )
            for seq, reaction in enumerate(patient.get("reaction") or (), 1):
                reactions.append(
                    (pos, seq, reaction.get("reactionmeddrapt"), reaction.get("reactionoutcome"))
                )
        except (AttributeError, TypeError) as exc:
            # drop any rows this record appended before failing, then quarantine it whole
            while reports and reports[-1][0] == pos:
                reports.pop()
            while drugs and drugs[-1][0] == pos:
                drugs.pop()
            while reactions and reactions[-1][0] == pos:
                reactions.pop()
            rid = rec.get("safetyreportid") if isinstance(rec, Mapping) else None
            label = f"safetyreportid {rid}" if rid else f"record #{pos}"
            issues.add(
                "reports",
                pd.Series([rid or f"record #{pos}"]),
                "<record>",
                pd.Series([repr(rec)[:200]]),
                f"{label}: malformed openFDA record ({exc})",
                "rejected",
            )
    return reports, drugs, reactions, pos + 1


def _null_bad(
    issues: _Issues,
    dataset: str,
    ids: pd.Series,
    field_name: str,
    raw: pd.Series,
    bad: pd.Series,
    what: str,
) -> int:
    mask = bad.fillna(False).to_numpy(dtype=bool)
    if not mask.any():
        return 0
    bad_ids, bad_values = ids[mask], _text(raw)[mask]
    reason = "safetyreportid " + bad_ids.astype("string") + f": {field_name} '" + bad_values + f"' {what}"
    issues.add(dataset, bad_ids, field_name, bad_values, reason, "nulled")
    return int(mask.sum())


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
    report_rows, drug_rows, reaction_rows, records_in = _flatten(records, issues)
    malformed = records_in - len(report_rows)
    raw = pd.DataFrame.from_records(report_rows, columns=_REPORT_FIELDS)
    raw_drugs = pd.DataFrame.from_records(drug_rows, columns=_DRUG_FIELDS)
    raw_reactions = pd.DataFrame.from_records(reaction_rows, columns=_REACTION_FIELDS)
    nulled = 0

    # --- record-level rejection: no id, or no usable receivedate
    ids = _text(raw["safetyreportid"])
    no_id = ids.isna().to_numpy()
    if no_id.any():
        where = "record #" + raw.loc[no_id, "pos"].astype("string")
        issues.add("reports", where, "safetyreportid", raw.loc[no_id, "safetyreportid"],
                   where + ": safetyreportid is missing", "rejected")  # fmt: skip
    received, received_precision, _ = parse_dates(raw["receivedate"])
    bad_received = ~no_id & (received.isna() | (received_precision != "day").fillna(True)).to_numpy()
    if bad_received.any():
        values = _text(raw.loc[bad_received, "receivedate"])
        reason = ("safetyreportid " + ids[bad_received] + ": receivedate '" + values.fillna("")
                  + "' is not a YYYYMMDD date")  # fmt: skip
        issues.add("reports", ids[bad_received], "receivedate", values, reason, "rejected")
    keep = ~no_id & ~bad_received
    rejected = int((~keep).sum())

    # --- dedup: latest version per safetyreportid
    receipt, _, bad_receipt = parse_dates(raw["receiptdate"])
    version, bad_version = _codes(raw["safetyreportversion"], range(0, 10_000))
    candidates = pd.DataFrame({"id": ids, "version": version, "receipt": receipt, "pos": raw["pos"]}).loc[
        keep
    ]
    ordered = candidates.sort_values(["id", "version", "receipt", "pos"], na_position="first", kind="stable")
    latest = ordered.drop_duplicates("id", keep="last")
    duplicates_removed = len(candidates) - len(latest)
    kept = np.zeros(len(raw), dtype=bool)
    kept[latest.index.to_numpy()] = True
    kept_rows = kept  # row positions in `raw` that become reports
    rep_ids = ids[kept_rows]

    def take(series: pd.Series) -> pd.Series:
        return series[kept_rows]

    nulled += _null_bad(issues, "reports", rep_ids, "receiptdate", take(raw["receiptdate"]),
                        take(bad_receipt), "is not a date")  # fmt: skip
    nulled += _null_bad(issues, "reports", rep_ids, "safetyreportversion", take(raw["safetyreportversion"]),
                        take(bad_version), "is not a version number")  # fmt: skip
    narrative_date = _text(take(raw["narrative"])).str.extract(_EVENT_DATE, expand=False)
    event_date, event_precision, bad_event = parse_dates(narrative_date)
    nulled += _null_bad(issues, "reports", rep_ids, "narrativeincludeclinical", narrative_date, bad_event,
                        "is not a CASE EVENT DATE")  # fmt: skip
    serious, bad_serious = _codes(take(raw["serious"]), (1, 2))
    nulled += _null_bad(issues, "reports", rep_ids, "serious", take(raw["serious"]), bad_serious,
                        "is not 1 or 2")  # fmt: skip
    sex, bad_sex = _codes(take(raw["patientsex"]), (0, 1, 2))
    nulled += _null_bad(issues, "reports", rep_ids, "patientsex", take(raw["patientsex"]), bad_sex,
                        "is not 0, 1 or 2")  # fmt: skip

    age_raw, unit_raw = take(raw["patientonsetage"]), _text(take(raw["patientonsetageunit"]))
    age, bad_age_number = _numbers(age_raw)
    factor = unit_raw.map(AGE_UNIT_YEARS).astype("Float64")
    nulled += _null_bad(issues, "reports", rep_ids, "patientonsetage", age_raw, bad_age_number,
                        "is not a number")  # fmt: skip
    bad_unit = age.notna() & factor.isna()
    nulled += _null_bad(issues, "reports", rep_ids, "patientonsetageunit", unit_raw.fillna("<missing>"),
                        bad_unit, "is not an age unit (800-805)")  # fmt: skip
    age_years = age * factor
    implausible = (age_years < 0) | (age_years > MAX_AGE_YEARS)
    nulled += _null_bad(issues, "reports", rep_ids, "patientonsetage",
                        age_raw.astype("string") + " unit " + unit_raw.fillna(""), implausible,
                        f"is not a plausible age (0-{MAX_AGE_YEARS:g} years)")  # fmt: skip
    age_years = age_years.mask(implausible.fillna(False))
    age_group = pd.cut(age_years.astype("float64"), AGE_BINS, right=False, labels=AGE_LABELS)
    age_group = age_group.astype("string").fillna("unknown")

    weight, bad_weight = _numbers(take(raw["patientweight"]))
    implausible_weight = ((weight <= 0) | (weight > MAX_WEIGHT_KG)).fillna(False)
    nulled += _null_bad(issues, "reports", rep_ids, "patientweight", take(raw["patientweight"]),
                        bad_weight | implausible_weight, f"is not a plausible weight (0-{MAX_WEIGHT_KG:g} kg)")  # fmt: skip
    weight = weight.mask(implausible_weight)
    flagged = (_text(take(raw["duplicate"])) == "1").fillna(False)

    reports = pd.DataFrame(
        {
            "source": source,
            "safetyreportid": rep_ids,
            "caseid": rep_ids,
            "safetyreportversion": take(version),
            "receivedate": take(received),
            "receiptdate": take(receipt),
            "event_date": event_date,
            "event_date_precision": event_precision,
            "serious": serious,
            "reporttype": _text(take(raw["reporttype"])),
            "occurcountry": _text(take(raw["occurcountry"])).str.upper(),
            "patientsex": sex,
            "age_years": age_years,
            "age_group": age_group,
            "weight_kg": weight,
            "is_duplicate_flagged": flagged.astype("boolean"),
            "data_version": data_version,
        }
    )
    reports = model.conform(reports, model.REPORT_COLUMNS)

    # --- reactions of kept reports
    pos_to_id = pd.Series(rep_ids.to_numpy(), index=take(raw["pos"]).to_numpy())
    reactions_all = raw_reactions[raw_reactions["pos"].isin(pos_to_id.index)]
    rx_ids = pd.Series(
        pos_to_id.loc[reactions_all["pos"]].to_numpy(), index=reactions_all.index, dtype="string"
    )
    verbatim = _text(reactions_all["reactionmeddrapt"])
    no_pt = verbatim.isna().to_numpy()
    if no_pt.any():
        seq = reactions_all.loc[no_pt, "reaction_seq"].astype("string")
        reason = "safetyreportid " + rx_ids[no_pt] + ": reaction " + seq + " has no reactionmeddrapt"
        issues.add("reactions", rx_ids[no_pt], "reactionmeddrapt", reactions_all.loc[no_pt, "reactionmeddrapt"],
                   reason, "rejected")  # fmt: skip
    rx = reactions_all[~no_pt]
    rx_ids_kept = rx_ids[~no_pt]
    outcome, bad_outcome = _codes(rx["reactionoutcome"], range(1, 7))
    nulled += _null_bad(issues, "reactions", rx_ids_kept, "reactionoutcome", rx["reactionoutcome"],
                        bad_outcome, "is not an outcome code 1-6")  # fmt: skip
    reactions = pd.DataFrame(
        {
            "source": source,
            "safetyreportid": rx_ids_kept,
            "reaction_seq": rx["reaction_seq"].astype("Int64"),
            # verbatim as received; only surrounding whitespace is trimmed
            "pt_verbatim": verbatim[~no_pt],
            "reactionoutcome": outcome,
        }
    )
    reactions = model.conform(normalize_reactions(reactions), model.REACTION_COLUMNS)

    # --- drugs of kept reports
    drugs_all = raw_drugs[raw_drugs["pos"].isin(pos_to_id.index)]
    dr_ids = pd.Series(pos_to_id.loc[drugs_all["pos"]].to_numpy(), index=drugs_all.index, dtype="string")
    characterization, bad_char = _codes(drugs_all["drugcharacterization"], (1, 2, 3))
    nulled += _null_bad(issues, "drugs", dr_ids, "drugcharacterization", drugs_all["drugcharacterization"],
                        bad_char, "is not 1, 2 or 3")  # fmt: skip
    start, start_precision, bad_start = parse_dates(drugs_all["drugstartdate"])
    end, end_precision, bad_end = parse_dates(drugs_all["drugenddate"])
    nulled += _null_bad(issues, "drugs", dr_ids, "drugstartdate", drugs_all["drugstartdate"], bad_start,
                        "is not a date")  # fmt: skip
    nulled += _null_bad(issues, "drugs", dr_ids, "drugenddate", drugs_all["drugenddate"], bad_end,
                        "is not a date")  # fmt: skip
    duration, bad_duration = _numbers(drugs_all["drugtreatmentduration"])
    duration_unit = _text(drugs_all["drugtreatmentdurationunit"])
    duration_factor = duration_unit.map(DURATION_UNIT_DAYS).astype("Float64")
    nulled += _null_bad(issues, "drugs", dr_ids, "drugtreatmentduration", drugs_all["drugtreatmentduration"],
                        bad_duration, "is not a number")  # fmt: skip
    nulled += _null_bad(issues, "drugs", dr_ids, "drugtreatmentdurationunit", duration_unit.fillna("<missing>"),
                        duration.notna() & duration_factor.isna(), "is not a duration unit (801-806)")  # fmt: skip
    dose, bad_dose = _numbers(drugs_all["drugcumulativedosagenumb"])
    dose_unit = _text(drugs_all["drugcumulativedosageunit"])
    dose_factor = dose_unit.map(DOSE_UNIT_MG).astype("Float64")
    nulled += _null_bad(issues, "drugs", dr_ids, "drugcumulativedosagenumb", drugs_all["drugcumulativedosagenumb"],
                        bad_dose, "is not a number")  # fmt: skip
    nulled += _null_bad(issues, "drugs", dr_ids, "drugcumulativedosageunit", dose_unit.fillna("<missing>"),
                        dose.notna() & dose_factor.isna(), "is not a dose unit (001-004)")  # fmt: skip

    event_by_pos = pd.Series(event_date.to_numpy(), index=take(raw["pos"]).to_numpy())
    event_prec_by_pos = pd.Series(
        event_precision.to_numpy(), index=take(raw["pos"]).to_numpy(), dtype="string"
    )
    drug_event = pd.Series(event_by_pos.loc[drugs_all["pos"]].to_numpy(), index=drugs_all.index)
    drug_event_prec = pd.Series(event_prec_by_pos.loc[drugs_all["pos"]].to_numpy(), index=drugs_all.index)
    tto = (drug_event - start).dt.total_seconds() / 86400.0
    rank = np.maximum(
        drug_event_prec.map(_PRECISION_RANK).astype("float64").to_numpy(),
        start_precision.map(_PRECISION_RANK).astype("float64").to_numpy(),
    )
    tto_precision = pd.Series(rank, index=drugs_all.index).map({v: k for k, v in _PRECISION_RANK.items()})
    tto_precision = tto_precision.astype("string").mask(tto.isna())

    drugs = pd.DataFrame(
        {
            "source": source,
            "safetyreportid": dr_ids,
            "drug_seq": drugs_all["drug_seq"].astype("Int64"),
            "medicinalproduct": _text(drugs_all["medicinalproduct"]),
            "role": characterization.map(ROLES).astype("string"),
            "drugcharacterization": characterization,
            "start_date": start,
            "start_date_precision": start_precision,
            "end_date": end,
            "end_date_precision": end_precision,
            "treatment_duration_days": duration * duration_factor,
            "cum_dose_mg": dose * dose_factor,
            "tto_days": tto.astype("Float64"),
            "tto_precision": tto_precision,
            GENERIC_NAME_COLUMN: _text(drugs_all[GENERIC_NAME_COLUMN]),
            ACTIVE_SUBSTANCE_COLUMN: _text(drugs_all[ACTIVE_SUBSTANCE_COLUMN]),
        }
    )
    drugs = model.conform(normalize_drugs(drugs, drug_config), model.DRUG_COLUMNS)

    quarantine = issues.table()
    target_ids = drugs.loc[drugs["is_target_drug"].fillna(False).astype(bool), "safetyreportid"]
    stats = {
        "records_in": records_in,
        "malformed": malformed,
        "quarantined": rejected + malformed,
        "duplicates_removed": int(duplicates_removed),
        "reports_out": len(reports),
        "duplicate_flagged": int(reports["is_duplicate_flagged"].sum()),
        "reactions_in": len(reactions_all),
        "reactions_quarantined": int(no_pt.sum()),
        "reactions": len(reactions),
        "pt_known": int(reactions["pt_known"].sum()),
        "pt_unknown": int((~reactions["pt_known"]).sum()),
        "drugs_in": len(drugs_all),
        "drugs": len(drugs),
        "drugs_unmapped": int((drugs["substance_match"] == "unmapped").sum()),
        "target_drug_rows": int(len(target_ids)),
        "target_reports": int(target_ids.nunique()),
        "values_nulled": int(nulled),
        "quarantine_rows": len(quarantine),
    }
    return NormalizedBatch(reports, drugs, reactions, quarantine, stats, terms_version())


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
    frame = pd.DataFrame.from_records(rows, columns=RAW_REPORT_COLUMNS)
    for column in RAW_REPORT_COLUMNS[:8]:
        frame[column] = _text(frame[column]) if len(frame) else frame[column].astype("string")
    frame["n_drugs"] = frame["n_drugs"].astype("Int64")
    frame["n_reactions"] = frame["n_reactions"].astype("Int64")
    return frame
