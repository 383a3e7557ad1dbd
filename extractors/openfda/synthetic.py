"""Cheap synthetic drug/event reports for paging and load tests (never real FAERS data).

Reports are shallow variations of one template so 30,000 of them build in well under a second.
The watched drug appears under its generic name, a brand, or only as a misspelled product string
with an active substance, as in FAERS; background reports name other drugs and other weeks.
"""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any

REACTIONS = (
    "Depression", "Headache", "Back pain", "Arthralgia", "Myalgia", "Dry skin", "Cheilitis",
    "Epistaxis", "Anxiety", "Suicidal ideation", "Nausea", "Fatigue", "Alopecia", "Rash",
)
OTHER_DRUGS = (("CIPRO", "CIPROFLOXACIN"), ("LIPITOR", "ATORVASTATIN"), ("YAZ", "DROSPIRENONE"))


def _drug(product: str, substance: str | None, generic: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"drugcharacterization": "1", "medicinalproduct": product}
    if substance:
        entry["activesubstance"] = {"activesubstancename": substance}
    if generic:
        entry["openfda"] = {"generic_name": [generic], "brand_name": [product]}
    return entry


def synthetic_reports(
    n_matching: int,
    first_day: date,
    *,
    days: int = 7,
    n_background: int = 0,
    seed: int = 0,
    id_offset: int = 50_000_000,
) -> list[dict[str, Any]]:
    """`n_matching` isotretinoin reports received in [first_day, first_day + days), then background.

    Background reports are other drugs in the same days plus isotretinoin reports in the week before,
    so a correct window query must exclude them.
    """
    rng = random.Random(seed)
    template = {
        "safetyreportversion": "1",
        "receivedateformat": "102",
        "serious": "1",
        "occurcountry": "US",
        "primarysource": {"qualification": "5", "reportercountry": "US"},
        "patient": {"patientsex": "2", "patientonsetage": "19", "patientonsetageunit": "801"},
    }
    iso = (
        _drug("ISOTRETINOIN", "ISOTRETINOIN", "ISOTRETINOIN"),
        _drug("ACCUTANE", None, "ISOTRETINOIN"),
        _drug("ROACCUTANE", None, None),
        _drug("ISOTRETINION", "ISOTRETINOIN", None),
    )
    reports: list[dict[str, Any]] = []

    def make(number: int, day: date, drugs: list[dict[str, Any]]) -> dict[str, Any]:
        report = copy.copy(template)
        report["safetyreportid"] = str(id_offset + number)
        report["receivedate"] = f"{day:%Y%m%d}"
        report["receiptdate"] = report["receivedate"]
        patient = dict(template["patient"])
        patient["reaction"] = [{"reactionmeddrapt": pt} for pt in rng.sample(REACTIONS, rng.randint(1, 3))]
        patient["drug"] = drugs
        report["patient"] = patient
        return report

    for number in range(n_matching):
        day = first_day + timedelta(days=number % days)
        reports.append(make(number, day, [copy.deepcopy(iso[number % len(iso)])]))
    for extra in range(n_background):
        number = n_matching + extra
        if extra % 4 == 0:  # the drug, but the week before the window
            day = first_day - timedelta(days=1 + extra % 7)
            drugs = [copy.deepcopy(iso[0])]
        else:
            day = first_day + timedelta(days=extra % days)
            product, substance = OTHER_DRUGS[extra % len(OTHER_DRUGS)]
            drugs = [_drug(product, substance, substance)]
        reports.append(make(number, day, drugs))
    rng.shuffle(reports)
    return reports
