"""2x2 construction, zero-cell conventions, report counting and count validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.contingency import count_reports, expected_count, stratified_expected, two_by_two
from signals.measures import chi2_yates, ic, prr, relative_reporting_ratio, ror, score_table
from signals.validation import CountsError, check_counts, complete_counts


def test_two_by_two_and_expected() -> None:
    t = two_by_two([5], [272], [783], [6_145_409])
    assert (t.a[0], t.b[0], t.c[0], t.d[0]) == (5, 267, 778, 6_145_409 - 272 - 778)
    assert expected_count(272, 783, 6_145_409) == pytest.approx(272 * 783 / 6_145_409)
    assert expected_count([0], [0], [0])[0] == 0.0


@pytest.mark.parametrize(
    ("cells", "prr_", "ror_"),
    [
        # a = 0: estimate 0, interval [0, inf]
        ((0, 3, 14, 183), (0.0, 0.0, np.inf), (0.0, 0.0, np.inf)),
        # c = 0: the event is only reported with the drug -> inf, interval [0, inf]
        ((4, 10, 0, 100), (np.inf, 0.0, np.inf), (np.inf, 0.0, np.inf)),
        # b = 0: every report of the drug has the event; PRR finite, ROR inf
        ((4, 0, 6, 100), (1 / (6 / 106), None, None), (np.inf, 0.0, np.inf)),
        # d = 0: ROR 0 with an undefined SE
        ((4, 2, 6, 0), (4 / 6, None, None), (0.0, 0.0, np.inf)),
        # empty table
        ((0, 0, 0, 0), (0.0, 0.0, np.inf), (0.0, 0.0, np.inf)),
        # drug in every report, event never elsewhere
        ((3, 1, 0, 0), (np.inf, 0.0, np.inf), (np.inf, 0.0, np.inf)),
    ],
)
def test_zero_cell_conventions(cells: tuple[int, ...], prr_: tuple, ror_: tuple) -> None:
    p, r = prr(*cells), ror(*cells)
    for got, want in ((p, prr_), (r, ror_)):
        values = (float(got.estimate), float(got.lower), float(got.upper))
        assert not np.isnan(values).any()
        for v, w in zip(values, want, strict=True):
            if w is not None:
                assert v == pytest.approx(w)
    a, b, c, d = cells
    assert np.isfinite(chi2_yates(*cells)) and chi2_yates(*cells) >= 0
    e = expected_count(a + b, a + c, a + b + c + d)
    assert np.isfinite([ic(a, e).lower, ic(a, e).upper]).all()


def test_chi_square_empty_margin_is_zero_and_exact_match_is_zero() -> None:
    assert chi2_yates(0, 0, 5, 5) == 0.0  # empty drug row
    assert chi2_yates(5, 5, 5, 5) == 0.0  # a == E: Yates correction min(0.5, 0) leaves 0
    # |a - E| = 0.25 < 0.5: R's correction removes it entirely
    assert chi2_yates(1, 1, 1, 3) == pytest.approx(0.0)


def test_relative_reporting_ratio_conventions() -> None:
    np.testing.assert_array_equal(
        relative_reporting_ratio([0, 2, 0, 3], [1.0, 4.0, 0.0, 0.0]), [0, 0.5, 0, np.inf]
    )


def test_count_reports_counts_unique_reports() -> None:
    raw = pd.DataFrame(
        {
            "id": [1, 1, 1, 2, 2, 3],
            "drug": ["A", "A", "B", "A", "A", "B"],
            "event": ["x", "x", "x", "y", "x", "y"],
        }
    )
    got = count_reports(raw).set_index(["drug", "event"])
    assert got.loc[("A", "x"), "n"] == 2  # report 1 lists A/x twice
    assert got.loc[("A", "x"), "drug_total"] == 2
    assert got.loc[("B", "x"), "event_total"] == 2
    assert (got["total"] == 3).all()


def test_count_reports_rejects_missing_values_and_columns() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        count_reports(pd.DataFrame({"id": [1]}))
    with pytest.raises(ValueError, match="missing values"):
        count_reports(pd.DataFrame({"id": [1, None], "drug": ["A", "B"], "event": ["x", "y"]}))


def test_stratified_expected_from_per_stratum_margins() -> None:
    per_stratum = pd.DataFrame(
        {
            "sex": ["F", "F", "M", "M"],
            "drug": ["A", "A", "A", "B"],
            "event": ["x", "y", "x", "x"],
            "n": [2, 1, 3, 4],
            "drug_total": [10, 10, 20, 30],
            "event_total": [40, 5, 60, 60],
            "total": [100, 100, 200, 200],
        }
    )
    got = stratified_expected(per_stratum, ["sex"]).set_index(["drug", "event"])
    assert got.loc[("A", "x"), "n"] == 5
    assert got.loc[("A", "x"), "e"] == pytest.approx(10 * 40 / 100 + 20 * 60 / 200)
    assert got.loc[("A", "x"), "drug_total"] == 30 and got.loc[("A", "x"), "event_total"] == 100
    assert (got["total"] == 300).all()
    scores, _ = score_table(got.reset_index(), fit_prior=False)
    assert scores["e"].iloc[0] == pytest.approx(10.0)


def test_check_counts_accepts_numeric_and_names_rows() -> None:
    good = pd.DataFrame(
        {
            "drug": ["A", "B"],
            "event": ["x", "x"],
            "n": [1, 2],
            "drug_total": [3, 4],
            "event_total": [3, 3],
            "total": [9, 9],
        }
    )
    check_counts(good)
    with pytest.raises(CountsError) as info:
        check_counts(good.assign(total=[9, 8]))
    assert info.value.row == 1 and info.value.column == "total"
    with pytest.raises(CountsError, match="non-integer"):
        check_counts(good.assign(n=[1.5, 2.0]))
    with pytest.raises(CountsError, match="booleans"):
        check_counts(good.assign(n=[True, False]))
    as_float = good.assign(n=[1.0, 2.0])
    check_counts(as_float)  # integral floats are counts


def test_complete_counts_derives_margins() -> None:
    raw = pd.DataFrame({"drug": ["A", "A", "B"], "event": ["x", "y", "x"], "n": ["2", "1", " 4"]})
    got = complete_counts(raw)
    assert got["drug_total"].tolist() == [3, 3, 4]
    assert got["event_total"].tolist() == [6, 1, 6]
    assert got["total"].tolist() == [7, 7, 7]


def test_check_counts_rejects_impossible_stratified_expected() -> None:
    good = pd.DataFrame(
        {
            "drug": ["A"],
            "event": ["x"],
            "n": [1],
            "drug_total": [3],
            "event_total": [3],
            "total": [9],
            "e": [0.5],
        }
    )
    check_counts(good)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(CountsError, match="expected count"):
            check_counts(good.assign(e=[bad]))
