"""download.json manifests: the drug/event partitions, their quarters and parts."""

from __future__ import annotations

import json

import pytest

from extractors.openfda_bulk.manifest import ManifestError, parse_manifest, read_manifest

MANIFEST = {
    "meta": {"last_updated": "2024-07-26", "terms": "https://open.fda.gov/terms/"},
    "results": {
        "device": {"event": {"partitions": []}},
        "drug": {
            "event": {
                "export_date": "2024-07-26",
                "total_records": 19000000,
                "partitions": [
                    {
                        "size_mb": "27.91",
                        "records": 58352,
                        "display_name": "2004 Q1 (part 1 of 2)",
                        "file": "https://download.open.fda.gov/drug/event/2004q1/drug-event-0001-of-0002.json.zip",
                    },
                    {
                        "size_mb": "20.02",
                        "records": 41648,
                        "display_name": "2004 Q1 (part 2 of 2)",
                        "file": "https://download.open.fda.gov/drug/event/2004q1/drug-event-0002-of-0002.json.zip",
                    },
                    {
                        "size_mb": "30.5",
                        "records": "61000",
                        "display_name": "2017 Q2 (part 1 of 1)",
                        "file": "https://download.open.fda.gov/drug/event/2017q2/drug-event-0001-of-0001.json.zip",
                    },
                    {
                        "size_mb": "1.2",
                        "records": None,
                        "display_name": "All other (part 1 of 1)",
                        "file": "https://download.open.fda.gov/drug/event/all_other/drug-event-0001-of-0001.json.zip",
                    },
                ],
            }
        },
    },
}


def test_partitions_quarters_and_parts():
    manifest = parse_manifest(MANIFEST)
    assert (manifest.export_date, manifest.total_records) == ("2024-07-26", 19000000)
    assert [(p.quarter, p.part, p.records, p.size_mb) for p in manifest.partitions] == [
        ("2004Q1", "0001-of-0002", 58352, 27.91),
        ("2004Q1", "0002-of-0002", 41648, 20.02),
        ("2017Q2", "0001-of-0001", 61000, 30.5),
        (None, "0001-of-0001", None, 1.2),
    ]
    assert manifest.partitions[0].file_name == "drug-event-0001-of-0002.json.zip"
    assert [p.display_name for p in manifest.select(["2004q1"])] == [
        "2004 Q1 (part 1 of 2)",
        "2004 Q1 (part 2 of 2)",
    ]
    assert len(manifest.select()) == 4 and manifest.select(["1999Q1"]) == []


def test_read_from_file_and_errors(tmp_path):
    path = tmp_path / "download.json"
    path.write_text(json.dumps(MANIFEST))
    assert len(read_manifest(path).partitions) == 4
    with pytest.raises(ManifestError, match="results.drug.event.partitions"):
        parse_manifest({"results": {"device": {}}})
    broken = json.loads(json.dumps(MANIFEST))
    broken["results"]["drug"]["event"]["partitions"][1]["file"] = ""
    with pytest.raises(ManifestError, match="partition #1 .*has no file"):
        parse_manifest(broken)
