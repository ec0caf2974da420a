"""`ttp-diag analyze` end to end on a simulated table."""

import json

import pytest

import ttp_diag as td
from ttp_diag.cli import main


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "sim.parquet"
    td.simulate_score_table(n_users=12, n_queries=5, n_candidates=12, seed=2).to_parquet(path)
    return path


def test_analyze_prints_observed_predicted_and_quantities(table_path, capsys):
    assert main(["analyze", str(table_path), "--ns", "1,4,8,12"]) == 0
    out = capsys.readouterr().out
    assert "oracle calibration" in out
    for s in ("score_global", "score_det", "score_prob"):
        assert f"{s} obs" in out and f"{s} pred" in out
    assert "relMAE %" in out and "alpha" in out and "rho_eff" in out


def test_analyze_json_matches_api(table_path, capsys):
    ns = [1, 4, 8]
    assert main(["analyze", str(table_path), "--ns", "1,4,8", "--scores", "score_det",
                 "--shape", "gaussian", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    t = td.io.read_table(table_path)
    obs = td.bon_curve(t, "score_det", ns)["utility"].tolist()
    assert res["models"]["score_det"]["observed"] == pytest.approx(obs)
    assert res["models"]["score_det"]["alpha"] == pytest.approx(td.diagnose(t, "score_det").alpha)
    assert res["calibration"]["shape"] == "gaussian"


def test_analyze_errors_are_one_line(table_path, capsys):
    assert main(["analyze", str(table_path), "--ns", "1,40", "--pool", "error"]) == 3
    err = capsys.readouterr().err  # ScoreTableError's code, and the fix names the CLI flag
    assert "N=40 is larger than the candidate pool" in err and "--pool clip" in err
    assert "pool='clip'" not in err
    assert main(["analyze", str(table_path) + ".missing"]) == 5  # InputFileError's code
    assert "does not exist" in capsys.readouterr().err


def test_cli_warnings_are_one_plain_line_each(tmp_path, capsys):
    """Too few users for intervals: the warnings reach a CLI user as one plain line each,
    once, without the Python warning record or a line of source code."""
    path = tmp_path / "four.parquet"
    td.simulate_score_table(n_users=4, n_queries=3, n_candidates=6, seed=1).to_parquet(path)
    assert main(["analyze", str(path), "--ns", "1,3,6", "--ci", "0.95", "--n-boot", "50"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    warns = [line for line in err if line.startswith("ttp-diag: warning:")]
    assert warns and len(warns) == len(set(warns)) and len(warns) == len(err)
    assert "RuntimeWarning" not in captured.err and "warnings.warn" not in captured.err
    assert "too few for an interval" in captured.out  # the verdict says it in words


def test_risk_out_on_an_existing_folder_says_it_replaces(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=1).to_parquet(path)
    out = tmp_path / "risk"
    assert main(["risk", str(path), "--out", str(out)]) == 0
    assert "exists" not in capsys.readouterr().err
    assert main(["risk", str(path), "--out", str(out)]) == 0
    assert "are replaced, other files are kept" in capsys.readouterr().err
