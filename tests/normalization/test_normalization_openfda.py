from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from normalization_records import make_record

from normalization import model
from normalization.openfda import normalize_openfda_reports, raw_reports_frame


def normalize(records: list[dict[str, Any]], drug_config: dict[str, Any]):
    return normalize_openfda_reports(
        records, source="openfda_api", data_version="2024-02-01", drug_config=drug_config
    )


def test_real_sample_loads_whole(real_records, drug_config) -> None:
    batch = normalize(real_records, drug_config)
    assert batch.stats == {
        "records_in": 100,
        "malformed": 0,
        "quarantined": 0,
        "duplicates_removed": 0,
        "reports_out": 100,
        "duplicate_flagged": 99,
        "reactions_in": 247,
        "reactions_quarantined": 0,
        "reactions": 247,
        "pt_known": 247,
        "pt_unknown": 0,
        "drugs_in": 265,
        "drugs": 265,
        "drugs_unmapped": 39,
        "target_drug_rows": 0,
        "target_reports": 0,
        "values_nulled": 0,
        "quarantine_rows": 0,
    }
    for name, frame in (("reports", batch.reports), ("drugs", batch.drugs), ("reactions", batch.reactions)):
        assert dict(frame.dtypes.astype(str)) == model.TABLES[name]
    first = batch.reports.iloc[0]
    assert (first["safetyreportid"], first["receivedate"], first["age_years"], first["age_group"]) == (
        "5801206-7",
        pd.Timestamp("2008-07-07"),
        26.0,
        "18-29",
    )
    assert batch.reactions.loc[0, ["pt_verbatim", "pt", "mapping_rule"]].tolist() == [
        "DRUG ADMINISTRATION ERROR",
        "Drug administration error",
        "case",
    ]


def test_case_event_date_from_the_narrative_gives_time_to_onset(real_records, drug_config) -> None:
    batch = normalize(real_records, drug_config)
    report = batch.reports.set_index("safetyreportid").loc["10003330"]
    assert (report["event_date"], report["event_date_precision"]) == (pd.Timestamp("2012-07-01"), "month")
    letairis = batch.drugs[
        (batch.drugs["safetyreportid"] == "10003311") & (batch.drugs["drug_seq"] == 1)
    ].iloc[0]
    assert (letairis["active_substance"], letairis["tto_days"], letairis["tto_precision"]) == (
        "AMBRISENTAN",
        660.0,
        "day",
    )


def test_bad_key_fields_are_quarantined_and_the_rest_loads(drug_config) -> None:
    records = [
        make_record("10018771", receivedate="20171340"),
        make_record(None),
        make_record("10018772"),
        "not a record",
        make_record("10018773", patient="broken"),
    ]
    batch = normalize(records, drug_config)
    assert batch.reports["safetyreportid"].tolist() == ["10018772"]
    assert batch.stats["records_in"] == 5
    assert batch.stats["quarantined"] == 4
    assert batch.stats["records_in"] == batch.stats["reports_out"] + batch.stats["duplicates_removed"] + 4
    rejected = batch.quarantine[batch.quarantine["action"] == "rejected"].sort_values("reason")
    assert rejected["reason"].tolist()[:1] == ["record #1: safetyreportid is missing"]
    assert (
        "safetyreportid 10018771: receivedate '20171340' is not a YYYYMMDD date"
        in rejected["reason"].tolist()
    )
    assert set(rejected["field"]) == {"safetyreportid", "receivedate", "<record>"}
    assert set(rejected["stage"]) == {"normalize"}


def test_latest_version_wins_and_duplicates_are_counted(drug_config) -> None:
    records = [
        make_record("1", safetyreportversion="2", patient={"patientonsetage": "20"}),
        make_record("1", safetyreportversion="3", patient={"patientonsetage": "21"}),
        make_record("1", safetyreportversion="1", patient={"patientonsetage": "22"}),
        make_record("2", duplicate=None),
    ]
    batch = normalize(records, drug_config)
    assert batch.reports[["safetyreportid", "safetyreportversion", "age_years"]].values.tolist() == [
        ["1", 3, 21.0],
        ["2", 1, 19.0],
    ]
    assert batch.stats["duplicates_removed"] == 2
    assert batch.stats["duplicate_flagged"] == 1
    assert batch.reports["is_duplicate_flagged"].tolist() == [True, False]
    assert len(batch.reactions) == 2 and len(batch.drugs) == 2


@pytest.mark.parametrize(
    ("age", "unit", "years", "group"),
    [("2", "800", 20.0, "18-29"), ("18", "802", 1.5, "0-11"), ("52", "803", 52 * 7 / 365.25, "0-11"),
     ("65", "801", 65.0, "65+"), ("12", "801", 12.0, "12-17"), ("8766", "805", 1.0, "0-11")],
)  # fmt: skip
def test_age_units_convert_to_years(drug_config, age: str, unit: str, years: float, group: str) -> None:
    batch = normalize(
        [make_record(patient={"patientonsetage": age, "patientonsetageunit": unit})], drug_config
    )
    assert batch.reports.loc[0, "age_years"] == pytest.approx(years)
    assert batch.reports.loc[0, "age_group"] == group


def test_implausible_values_are_nulled_with_a_quarantine_row(drug_config) -> None:
    record = make_record(patient={"patientonsetage": "25", "patientonsetageunit": "800", "patientsex": "7"})
    record["patient"]["drug"][0]["drugcumulativedosageunit"] = "009"
    batch = normalize([record], drug_config)
    assert batch.reports.loc[0, ["age_years", "patientsex", "age_group"]].tolist() == [
        pd.NA,
        pd.NA,
        "unknown",
    ]
    assert pd.isna(batch.drugs.loc[0, "cum_dose_mg"])
    assert sorted(batch.quarantine["reason"]) == [
        "safetyreportid 10018771: drugcumulativedosageunit '009' is not a dose unit (001-004)",
        "safetyreportid 10018771: patientonsetage '25 unit 800' is not a plausible age (0-120 years)",
        "safetyreportid 10018771: patientsex '7' is not 0, 1 or 2",
    ]
    assert set(batch.quarantine["action"]) == {"nulled"}
    assert batch.stats["values_nulled"] == 3 and batch.stats["quarantined"] == 0


def test_drug_fields_roles_doses_and_durations(drug_config) -> None:
    record = make_record()
    record["patient"]["drug"] = [
        {"drugcharacterization": "1", "medicinalproduct": "ACCUTANE", "drugcumulativedosagenumb": "4.2",
         "drugcumulativedosageunit": "002", "drugtreatmentduration": "5", "drugtreatmentdurationunit": "802",
         "drugstartdate": "202310", "drugenddate": "2024"},
        {"drugcharacterization": "2", "medicinalproduct": "Yaz", "drugcumulativedosagenumb": "300",
         "drugcumulativedosageunit": "004", "openfda": {"generic_name": ["DROSPIRENONE AND ETHINYL ESTRADIOL"]}},
        {"drugcharacterization": "3", "medicinalproduct": "X", "activesubstance": {"activesubstancename": "Isotretinoin"}},
    ]  # fmt: skip
    drugs = normalize([record], drug_config).drugs
    assert drugs["role"].tolist() == ["S", "C", "I"]
    assert drugs["cum_dose_mg"].tolist() == [4200.0, pytest.approx(0.3), pd.NA]
    assert drugs.loc[0, "treatment_duration_days"] == pytest.approx(5 * 30.4375)
    assert drugs.loc[0, ["start_date", "start_date_precision", "end_date_precision"]].tolist() == [
        pd.Timestamp("2023-10-01"),
        "month",
        "year",
    ]
    assert drugs["active_substance"].tolist() == [
        "ISOTRETINOIN",
        "DROSPIRENONE AND ETHINYL ESTRADIOL",
        "ISOTRETINOIN",
    ]
    assert drugs["substance_match"].tolist() == ["product_variant", "openfda_generic_name", "activesubstance"]
    assert drugs["is_target_drug"].tolist() == [True, False, True]


def test_reaction_without_term_is_quarantined_and_its_report_kept(drug_config) -> None:
    record = make_record(patient={"reaction": [{"reactionmeddrapt": None}, {"reactionmeddrapt": "backache"}]})
    batch = normalize([record], drug_config)
    assert batch.reactions[["reaction_seq", "pt", "mapping_rule"]].values.tolist() == [
        [2, "Back pain", "synonym"]
    ]
    assert batch.quarantine["reason"].tolist() == [
        "safetyreportid 10018771: reaction 1 has no reactionmeddrapt"
    ]
    assert batch.stats["reactions_in"] == batch.stats["reactions"] + batch.stats["reactions_quarantined"]


def test_unknown_source_is_refused(drug_config) -> None:
    with pytest.raises(ValueError, match="source 'openfda' is not one of"):
        normalize_openfda_reports([], source="openfda", data_version="x", drug_config=drug_config)


def test_empty_input_gives_empty_conforming_tables(drug_config) -> None:
    batch = normalize([], drug_config)
    assert (len(batch.reports), len(batch.drugs), len(batch.reactions), batch.stats["records_in"]) == (
        0,
        0,
        0,
        0,
    )
    assert dict(batch.reports.dtypes.astype(str)) == model.REPORT_COLUMNS


def test_raw_reports_frame_keeps_values_as_received(real_records) -> None:
    raw = raw_reports_frame(real_records[:2] + [{"patient": None}])
    assert raw.loc[
        0, ["safetyreportid", "receivedate", "patientonsetage", "n_drugs", "n_reactions"]
    ].tolist() == [
        "5801206-7",
        "20080707",
        "26",
        1,
        2,
    ]
    assert raw.loc[2, "n_reactions"] == 0 and pd.isna(raw.loc[2, "safetyreportid"])
