"""The openFDA search strings the pipeline sends: the watched drug under all its names, and time windows.

Windows. A data interval is half-open, [start, end), and `receivedate` is a day (FDA's date of first
receipt, no time zone). A window maps to the days start.date() .. end.date() - 1 day, taken in UTC
when the datetimes are aware. A weekly interval [Mon 06:00, next Mon 06:00) is therefore Monday to
Sunday; consecutive intervals tile the calendar without overlap or gap. The cost is that reports
received on a Monday between 00:00 and 06:00 belong to that Monday's week, which is the only reading
a day-resolution date allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from extractors.openfda.engine import SUPPORTED_QUERY_RE
from pv.settings import Settings

GENERIC_NAME_FIELD = "patient.drug.openfda.generic_name.exact"
PRODUCT_FIELD = "patient.drug.medicinalproduct.exact"
SUBSTANCE_FIELD = "patient.drug.activesubstance.activesubstancename.exact"
REACTION_FIELD = "patient.reaction.reactionmeddrapt.exact"
# A lower bound for "everything received before": the server refuses '*' in a search.
EARLIEST_RECEIVEDATE = date(1900, 1, 1)


@dataclass(frozen=True)
class DrugConfig:
    """Every name under which FAERS reports one watched drug (pv/drugs.yaml entry)."""

    name: str
    active_substance: str
    generic_names: tuple[str, ...]
    product_names: tuple[str, ...]


def load_drug_config(settings: Settings) -> DrugConfig:
    return read_drug_config(settings.drugs_file, settings.drug)


def read_drug_config(drugs_file: Path, drug: str) -> DrugConfig:
    document = yaml.safe_load(Path(drugs_file).read_text(encoding="utf-8")) or {}
    entry = (document.get("drugs") or {}).get(drug)
    if not entry:
        known = sorted((document.get("drugs") or {}).keys())
        raise KeyError(f"drug {drug!r} is not configured in {drugs_file} (configured: {known})")
    substance = str(entry.get("active_substance") or "").strip()
    if not substance:
        raise ValueError(f"{drugs_file}: drugs.{drug}.active_substance is empty")
    return DrugConfig(
        name=drug,
        active_substance=substance,
        generic_names=tuple(_unique(entry.get("generic_names") or [])),
        product_names=tuple(_unique(entry.get("product_names") or [])),
    )


def _unique(names: list[object]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        text = str(name).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def phrase(field: str, value: str) -> str:
    """field:"value", refusing values the server's search charset or our quoting cannot carry."""
    if '"' in value or "\\" in value or not SUPPORTED_QUERY_RE.match(value):
        raise ValueError(f"{field} value {value!r} contains characters openFDA search does not accept")
    return f'{field}:"{value}"'


def drug_search(drug_config: DrugConfig) -> str:
    """Reports naming the drug anywhere: label-matched generic name, product string or active substance.

    FAERS leaves `openfda` out when the product string matches no label, so the product variants and
    the active substance catch misspelled and foreign-brand reports.
    """
    clauses = [phrase(GENERIC_NAME_FIELD, n) for n in drug_config.generic_names]
    clauses += [phrase(PRODUCT_FIELD, n) for n in drug_config.product_names]
    clauses.append(phrase(SUBSTANCE_FIELD, drug_config.active_substance))
    return "(" + " OR ".join(clauses) + ")"


def _utc_day(moment: datetime) -> date:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def window_days(start: datetime, end: datetime) -> tuple[date, date]:
    """First and last receivedate day of the half-open interval [start, end)."""
    first, last = _utc_day(start), _utc_day(end) - timedelta(days=1)
    if last < first:
        raise ValueError(f"interval [{start.isoformat()}, {end.isoformat()}) covers no whole receivedate day")
    return first, last


def receivedate_range(first: date, last: date) -> str:
    return f"receivedate:[{first:%Y%m%d} TO {last:%Y%m%d}]"


def receivedate_window(start: datetime, end: datetime) -> str:
    """`receivedate:[YYYYMMDD TO YYYYMMDD]` for [start, end): days start.date() .. end.date() - 1."""
    return receivedate_range(*window_days(start, end))


def last_day_before(end: datetime) -> date:
    """The last receivedate day of anything received before `end` (UTC), as the windows count days."""
    return _utc_day(end) - timedelta(days=1)


def received_before(end: datetime) -> str:
    """Every report received on a day before end.date(), consistent with receivedate_window."""
    return receivedate_range(EARLIEST_RECEIVEDATE, last_day_before(end))


def window_search(drug_config: DrugConfig, start: datetime, end: datetime) -> str:
    return f"{drug_search(drug_config)} AND {receivedate_window(start, end)}"


def reactions_any(terms: list[str]) -> str:
    return "(" + " OR ".join(phrase(REACTION_FIELD, t) for t in terms) + ")"
