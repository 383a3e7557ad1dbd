"""Golden files: input records -> the normalized rows expected from them, compared whole.

As FDA's openfda repository does for its pipeline, each case in tests/data/normalization/golden/ holds
the input and every expected output row; a change in any column of any row fails the test and shows the
diff. After an intended change, regenerate with

    PV_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/normalization/test_normalization_golden.py

and review the diff of the golden files like code.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from normalization.openfda import normalize_openfda_reports

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "normalization"
GOLDEN = DATA / "golden"
REGENERATE = os.environ.get("PV_REGENERATE_GOLDEN") == "1"
TABLES = ("reports", "drugs", "reactions", "quarantine")


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def load_input(case: dict[str, Any]) -> list[Any]:
    if "input_file" in case:
        return json.loads((GOLDEN / case["input_file"]).read_text())
    return case["input"]


def dump_case(case: dict[str, Any]) -> str:
    """Golden JSON with one input record and one expected row per line, so diffs read row by row."""

    def rows_block(values: list[Any], indent: str) -> str:
        if not values:
            return "[]"
        inner = (",\n" + indent + " ").join(
            json.dumps(v, ensure_ascii=False, sort_keys=False) for v in values
        )
        return "[\n" + indent + " " + inner + "\n" + indent + "]"

    lines = []
    for key, value in case.items():
        if key == "input":
            text = rows_block(value, " ")
        elif key == "expected":
            parts = [f'  "{name}": ' + (rows_block(v, "  ") if isinstance(v, list) else json.dumps(v))
                     for name, v in value.items()]  # fmt: skip
            text = "{\n" + ",\n".join(parts) + "\n }"
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f' "{key}": {text}')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def cases() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    config = yaml.safe_load((ROOT / "pv" / "drugs.yaml").read_text())["drugs"][
        case.get("drug", "isotretinoin")
    ]
    batch = normalize_openfda_reports(
        load_input(case), source=case.get("source", "openfda_api"), data_version=case.get("data_version", "golden"),
        drug_config=config,
    )  # fmt: skip
    actual = {name: rows(getattr(batch, name)) for name in TABLES} | {"stats": batch.stats}
    if REGENERATE:
        case["expected"] = actual
        path.write_text(dump_case(case))
        pytest.skip("golden file regenerated; review its diff")
    for name in (*TABLES, "stats"):
        assert actual[name] == case["expected"][name], f"{path.name}: {name} differ"


def test_every_golden_case_says_where_it_comes_from() -> None:
    assert len(cases()) >= 5
    for path in cases():
        case = json.loads(path.read_text())
        assert case["description"] and case["provenance"], path.name
