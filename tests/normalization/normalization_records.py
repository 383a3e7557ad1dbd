"""Hand-made openFDA records for defect tests."""

from __future__ import annotations

from typing import Any


def make_record(report_id: str = "10018771", **overrides: Any) -> dict[str, Any]:
    """A small valid openFDA record; keyword overrides replace top-level fields, `patient` merges."""
    record: dict[str, Any] = {
        "safetyreportid": report_id,
        "safetyreportversion": "1",
        "receivedate": "20240105",
        "receiptdate": "20240110",
        "serious": "1",
        "reporttype": "1",
        "occurcountry": "US",
        "duplicate": "1",
        "patient": {
            "patientsex": "2",
            "patientonsetage": "19",
            "patientonsetageunit": "801",
            "drug": [
                {
                    "drugcharacterization": "1",
                    "medicinalproduct": "ACCUTANE",
                    "drugstartdate": "20231001",
                    "drugcumulativedosagenumb": "4.2",
                    "drugcumulativedosageunit": "002",
                }
            ],
            "reaction": [{"reactionmeddrapt": "BACK PAIN", "reactionoutcome": "3"}],
        },
    }
    patient = overrides.pop("patient", None)
    record.update(overrides)
    if isinstance(patient, dict):
        record["patient"].update(patient)
    elif patient is not None:
        record["patient"] = patient
    return record
