"""``pv signals`` command: output format, prior in/out, and input errors with line and column."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals import cli
from signals.ebgm import Prior, eb_scores
from signals.measures import SCORE_COLUMNS

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
PRIOR = Prior(3.25379356, 0.39988854, 2.02612692, 1.90807970, 0.06534557)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fda_counts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FDA 2004Q1 isotretinoin rows as openFDA-style counts with margins (A, AB, AC, ABCD)."""
    rows = pd.read_csv(REFERENCE / "isotretinoin-2004q1-prr-rows-fda.csv")
    counts = pd.DataFrame(
        {
            "drug": rows["d"],
            "event": rows["e"],
            "n": rows["A"].astype(int),
            "drug_total": rows["AB"],
            "event_total": rows["AC"],
            "total": (rows["CD"] + rows["AB"]).astype(int),
        }
    )
    path = tmp_path_factory.mktemp("cli") / "counts.csv"
    counts.to_csv(path, index=False)
    return path


def test_scores_csv_with_given_margins_and_fixed_prior(tmp_path: Path, fda_counts: Path) -> None:
    prior_in = write(tmp_path / "prior.json", PRIOR.to_json())
    out = tmp_path / "scores.csv"
    prior_out = tmp_path / "used.json"
    code = cli.main(
        [
            "--counts",
            str(fda_counts),
            "--out",
            str(out),
            "--prior",
            str(prior_in),
            "--prior-out",
            str(prior_out),
        ]
    )
    assert code == 0
    scores = pd.read_csv(out)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == 62
    depression = scores[scores["event"] == "DEPRESSION"].iloc[0]
    assert depression["prr"] == pytest.approx(655.2655172094059, rel=1e-12)
    assert depression["e"] == pytest.approx(272 * 816 / 6145409, rel=1e-12)
    expected = eb_scores(PRIOR, scores["n"], scores["e"])
    np.testing.assert_allclose(scores["eb05"], expected.eb05, rtol=1e-12)
    assert Prior.from_json(prior_out.read_text()) == PRIOR  # given, not fitted


def test_margins_default_to_sums_over_the_file_and_prior_is_written(tmp_path: Path) -> None:
    counts = write(tmp_path / "c.csv", "drug,event,n\nA,x,5\nA,y,3\nB,x,2\nB,z,7\nC,y,1\n")
    out, prior_out = tmp_path / "s.csv", tmp_path / "p.json"
    assert cli.main(["--counts", str(counts), "--out", str(out), "--prior-out", str(prior_out)]) == 0
    scores = pd.read_csv(out)
    a_x = scores.iloc[0]
    assert a_x["e"] == pytest.approx(8 * 7 / 18)  # drug A 8, event x 7, total 18
    assert a_x["prr"] == pytest.approx((5 / 8) / (2 / 10))
    data = json.loads(prior_out.read_text())
    assert {"alpha1", "beta1", "alpha2", "beta2", "p", "neg_log_likelihood", "n_star", "converged"} <= set(
        data
    )
    assert data["converged"] is False  # 5 pairs: explicit fallback, reported
    assert np.isinf(scores.loc[scores["event"] == "z", "prr"]).all()  # event z seen only with B


def test_fitted_prior_on_caers_counts(tmp_path: Path) -> None:
    from signals.contingency import count_reports

    raw = pd.read_csv(REFERENCE / "openebgm-caers.csv")
    counted = count_reports(raw, report_col="id", drug_col="var1", event_col="var2").drop(columns="e")
    counts = tmp_path / "caers_counts.csv"
    counted.to_csv(counts, index=False)
    prior_out = tmp_path / "prior.json"
    assert (
        cli.main(["--counts", str(counts), "--out", str(tmp_path / "s.csv"), "--prior-out", str(prior_out)])
        == 0
    )
    prior = Prior.from_json(prior_out.read_text())
    assert prior.converged and prior.neg_log_likelihood is not None
    assert prior.neg_log_likelihood <= 4162.456
    scores = pd.read_csv(tmp_path / "s.csv")
    assert 125 <= int((scores["eb05"] >= 2).sum()) <= 140


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("drug,event\nA,x\n", "column 'n'", "missing required column"),
        ("drug,event,n\nA,x,5\nA,y,-3\n", "line 3, column 'n'", "negative count"),
        ("drug,event,n\nA,x,5\nA,y,3.5\n", "line 3, column 'n'", "non-integer"),
        ("drug,event,n\nA,x,five\n", "line 2, column 'n'", "not a count"),
        ("drug,event,n\nA,x,5\nB,y,1\nA,x,3\n", "line 4, column 'event'", "first on line 2"),
        (
            "drug,event,n,drug_total,event_total,total\nA,x,5,10,20,100\nA,y,3,2,5,100\n",
            "line 3, column 'n'",
            "exceeds drug_total",
        ),
        (
            "drug,event,n,drug_total,event_total,total\nA,x,5,10,20,100\nA,y,3,12,5,100\n",
            "line 3, column 'drug_total'",
            "but 10 on line 2",
        ),
        (
            "drug,event,n,drug_total,event_total,total\nA,x,5,10,20,20\n",
            "line 2, column 'total'",
            "cell d < 0",
        ),
        ("drug,event,n,total\nA,x,5,10\n", "column 'drug_total'", "given together"),
        ("drug,event,n\n,x,3\n", "line 2, column 'drug'", "empty drug"),
        ("drug,event,n\n", "", "no data rows"),
    ],
)
def test_bad_input_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, what: str
) -> None:
    counts = write(tmp_path / "bad.csv", text)
    out = tmp_path / "s.csv"
    assert cli.main(["--counts", str(counts), "--out", str(out)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert where in err and what in err, err
    assert not out.exists()


def test_bad_prior_file_and_missing_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = write(tmp_path / "c.csv", "drug,event,n\nA,x,5\n")
    bad_prior = write(tmp_path / "p.json", '{"alpha1": 1}')
    assert (
        cli.main(["--counts", str(counts), "--out", str(tmp_path / "s.csv"), "--prior", str(bad_prior)]) == 2
    )
    assert "lacks key" in capsys.readouterr().err
    assert cli.main(["--counts", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["--counts", str(counts), "--out", str(tmp_path / "s.csv"), "--n-star", "0"]) == 2


def test_add_subparser_registers_signals_command(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="pv")
    subparsers = parser.add_subparsers(dest="command")
    cli.add_subparser(subparsers)
    counts = write(tmp_path / "c.csv", "drug,event,n\nA,x,5\nB,y,2\n")
    args = parser.parse_args(
        ["signals", "--counts", str(counts), "--out", str(tmp_path / "s.csv"), "--n-star", "1"]
    )
    assert args.command == "signals" and args.n_star == 1
    assert args.func(args) == 0
    assert cli.run(args) == 0


def test_module_entry_point_runs_from_any_directory(tmp_path: Path) -> None:
    counts = write(tmp_path / "c.csv", "drug,event,n\nA,x,5\nB,y,2\n")
    done = subprocess.run(
        [sys.executable, "-m", "signals.cli", "--counts", str(counts), "--out", str(tmp_path / "s.csv")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.csv").read_text().startswith(",".join(SCORE_COLUMNS))
    bad = write(tmp_path / "bad.csv", "drug,event,n\nA,x,-1\n")
    done = subprocess.run(
        [sys.executable, "-m", "signals.cli", "--counts", str(bad), "--out", str(tmp_path / "t.csv")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "line 2, column 'n'" in done.stderr


def test_names_with_commas_and_quotes_round_trip(tmp_path: Path) -> None:
    counts = write(
        tmp_path / "c.csv", 'drug,event,n\n"EMERGEN-C (ASCORBIC ACID, B)","Injury, ""poisoning""",2\nB,x,3\n'
    )
    out = tmp_path / "s.csv"
    assert cli.main(["--counts", str(counts), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == ",".join(SCORE_COLUMNS)
    scores = pd.read_csv(out)
    assert scores["drug"].tolist() == ["EMERGEN-C (ASCORBIC ACID, B)", "B"]
    assert scores["event"].tolist() == ['Injury, "poisoning"', "x"]
