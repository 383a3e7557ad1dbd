"""The canonical staged tables that every source (openFDA API, openFDA bulk, FAERS ASCII) lands in.

Later stages (validation, signals, claims, reports) read only these tables, so they do not care
where a report came from. Column order and pandas dtypes are the contract; `conform` enforces it.
"""

from __future__ import annotations

import pandas as pd

SOURCES = ("openfda_api", "openfda_bulk", "faers_ascii", "sample")

# One row per safety report (latest version kept after dedup).
REPORT_COLUMNS: dict[str, str] = {
    "source": "string",
    "safetyreportid": "string",  # openFDA safetyreportid; FAERS primaryid (ISR for legacy AERS)
    "caseid": "string",  # FAERS caseid / legacy CASE; openFDA: safetyreportid
    "safetyreportversion": "Int64",  # openFDA safetyreportversion; FAERS caseversion
    "receivedate": "datetime64[s]",  # first received by FDA (FAERS init_fda_dt)
    "receiptdate": "datetime64[s]",  # latest information (FAERS fda_dt)
    "event_date": "datetime64[s]",  # FAERS event_dt; openFDA has none
    "event_date_precision": "string",  # day | month | year | None
    "serious": "Int64",  # 1 serious, 2 not serious
    "reporttype": "string",
    "occurcountry": "string",
    "patientsex": "Int64",  # 0 unknown, 1 male, 2 female
    "age_years": "Float64",  # patientonsetage converted to years
    "age_group": "string",  # 0-11, 12-17, 18-29, 30-44, 45-64, 65+ or unknown
    "weight_kg": "Float64",
    "is_duplicate_flagged": "boolean",  # openFDA `duplicate` == 1
    "data_version": "string",  # source's data version (openFDA meta.last_updated; FAERS quarter)
}

# One row per drug entry of a report.
DRUG_COLUMNS: dict[str, str] = {
    "source": "string",
    "safetyreportid": "string",
    "drug_seq": "Int64",  # position in patient.drug (1-based) / FAERS drug_seq
    "medicinalproduct": "string",  # verbatim
    "active_substance": "string",  # normalized substance name (upper case), None if unmapped
    "substance_match": "string",  # openfda_generic_name | activesubstance | product_variant | unmapped
    "role": "string",  # PS, SS, C, I (FAERS role_cod; openFDA drugcharacterization 1->S, 2->C, 3->I)
    "drugcharacterization": "Int64",  # 1 suspect, 2 concomitant, 3 interacting
    "is_target_drug": "boolean",  # this row is the watched drug
    "start_date": "datetime64[s]",
    "start_date_precision": "string",
    "end_date": "datetime64[s]",
    "end_date_precision": "string",
    "treatment_duration_days": "Float64",
    "cum_dose_mg": "Float64",
    "tto_days": "Float64",  # event_date - start_date when both known
    "tto_precision": "string",
}

# One row per reaction of a report.
REACTION_COLUMNS: dict[str, str] = {
    "source": "string",
    "safetyreportid": "string",
    "reaction_seq": "Int64",
    "pt_verbatim": "string",  # reactionmeddrapt as received
    "pt": "string",  # canonical MedDRA preferred term (verbatim when unknown)
    "pt_known": "boolean",  # pt is a known MedDRA PT after normalization
    "mapping_rule": "string",  # exact | case | spelling | synonym | unknown
    "reactionoutcome": "Int64",
}

TABLES: dict[str, dict[str, str]] = {
    "reports": REPORT_COLUMNS,
    "drugs": DRUG_COLUMNS,
    "reactions": REACTION_COLUMNS,
}

# Quarantined rows from any stage: nothing is dropped silently.
QUARANTINE_COLUMNS: dict[str, str] = {
    "stage": "string",  # extract | validate_raw | normalize | validate_normalized | ...
    "dataset": "string",
    "record_id": "string",  # safetyreportid / primaryid / file:line
    "field": "string",
    "value": "string",
    "reason": "string",
    "source_file": "string",
    "line_number": "Int64",
    "action": "string",  # rejected (row kept out of the stage) | nulled (value set to null, row kept)
}


def empty_table(name: str) -> pd.DataFrame:
    columns = TABLES.get(name, QUARANTINE_COLUMNS)
    return pd.DataFrame({col: pd.Series([], dtype=dtype) for col, dtype in columns.items()})


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Return `frame` with exactly `columns`, in order, with their dtypes (missing ones all-null)."""
    extra = set(frame.columns) - set(columns)
    if extra:
        raise ValueError(f"unexpected columns {sorted(extra)}; the canonical model has {list(columns)}")
    out = pd.DataFrame(index=frame.index)
    for col, dtype in columns.items():
        series = frame[col] if col in frame.columns else pd.Series(pd.NA, index=frame.index)
        if dtype.startswith("datetime64"):
            out[col] = pd.to_datetime(series, errors="raise").astype(dtype)
        else:
            out[col] = series.astype(dtype)
    return out.reset_index(drop=True)
