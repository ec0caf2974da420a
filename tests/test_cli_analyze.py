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
