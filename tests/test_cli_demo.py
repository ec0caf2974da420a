"""``ttp-diag demo`` / ``figures`` / ``risk`` end to end into a temporary folder."""

import re
import time

import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.cli import main


def assert_self_contained(html: str):
    assert html.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in html
    # nothing is fetched from elsewhere: no external images, scripts, styles or frames
    assert not re.search(r"""<(img|script|link|iframe)[^>]+(src|href)=["'](?!data:)""", html)
    assert "http://" not in html and "https://" not in html


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "small.parquet"
    td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=2,
                            collapsed_sigma_ratio=0.5).to_parquet(path)
    return path


def test_demo_default_table_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo_out"
    start = time.perf_counter()
    assert main(["demo", "--out", str(out), "--n-boot", "200"]) == 0
    assert time.perf_counter() - start < 60
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    for name in ("report.html", "summary.md", "diagnostics.csv", "calibration.csv",
                 "curves.csv", "fig5_task_panel_sqrt_log.png", "fig5_task_panel_gaussian.png",
                 "fig2_oracle_scaling.png", "figA6_sub_gaussian.png", "figA7_linearity.png",
                 "table_a13_collapse_by_half.csv", "table_a14_hacking_by_half.csv",
                 "risk_report.html", "compute_plan.csv"):
        assert (out / name).exists(), name
    assert_self_contained((out / "report.html").read_text())
    diag = pd.read_csv(out / "diagnostics.csv")
    assert set(diag["shape"]) == {"sqrt_log", "gaussian"}
    for col in ("alpha", "beta", "rho_plus", "rho_minus", "rho_eff", "rel_mae", "r2",
                "mean_capture"):
        assert col in diag.columns
    assert {"oracle", "score_global", "score_det", "score_prob"} <= set(diag["selector"])
    assert set(diag.loc[diag["selector"] == "oracle", "kind"]) == {"oracle"}
    assert set(diag.loc[diag["selector"] != "oracle", "kind"]) == {"reward_model"}
    try:  # the embedded table ships with its provenance, which the report carries along
        from ttp_diag.datasets import demo_provenance

        demo_provenance()
    except (ImportError, FileNotFoundError):
        return
    assert (out / "provenance.json").exists()


def test_demo_on_a_given_table_with_options(table_path, tmp_path):
    out = tmp_path / "o"
    rc = main(["demo", "--table", str(table_path), "--out", str(out), "--scores",
               "score_det,score_prob", "--ns", "1", "2", "4", "8", "--n-boot", "50"])
    assert rc == 0
    curves = pd.read_csv(out / "curves.csv")
    assert sorted(curves["n"].unique()) == [1, 2, 4, 8]
    assert set(curves["selector"]) == {"random", "oracle", "score_det", "score_prob"}
    assert (out / "fig6_failure_modes.png").exists()
    assert (out / "table_a10_variance_selectors.csv").exists()
    assert_self_contained((out / "report.html").read_text())


def test_demo_bad_input_is_one_clear_error(table_path, tmp_path, capsys):
    rc = main(["demo", "--table", str(table_path), "--out", str(tmp_path), "--scores",
               "score_nope"])
    assert rc == td.exceptions.ScoreTableError.exit_code  # one exit code per error class
    assert "score_nope" in capsys.readouterr().err
    rc = main(["demo", "--table", str(table_path), "--out", str(tmp_path), "--ns", "1", "x"])
    assert rc == td.exceptions.ConfigError.exit_code
    assert "--ns" in capsys.readouterr().err


def test_figures_and_risk_commands(table_path, tmp_path, capsys):
    # the multi-task layout is covered by test_plots.test_write_all_figures; here the CLI
    # plumbing: a CSV table, --names, --shapes, --training-baseline
    other = tmp_path / "other.csv"
    td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=3).to_csv(other,
                                                                                  index=False)
    out = tmp_path / "figs"
    rc = main(["figures", str(other), "--out", str(out), "--names", "A", "--shapes", "gaussian",
               "--training-baseline", "0.16"])
    assert rc == 0
    assert (out / "fig5_task_panel_gaussian.png").exists()
    assert (out / "fig6_failure_modes_A.png").exists()
    rc = main(["risk", str(table_path), "--out", str(tmp_path / "risk")])
    assert rc == 0
    assert "collapse low/high half" in capsys.readouterr().out
    html = (tmp_path / "risk" / "risk_report.html").read_text()
    assert_self_contained(html)
    assert (tmp_path / "risk" / "risk_by_half.png").exists()
    # a --names count that does not fit the tables: ConfigError, exit code 7
    assert main(["figures", str(table_path), "--out", str(out), "--names", "A", "B"]) == 7


def test_demo_with_one_score_and_no_train_split(tmp_path):
    from ttp_diag.full_report import full_report

    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=5, seed=4)
    t = t[t.split == "val"].drop(columns=["split", "var_prob"])
    res = full_report(t, tmp_path, scores=["score_global"], split=None, n_boot=20)
    assert set(res["diagnostics"]["selector"]) == {"oracle", "score_global"}
    assert not (tmp_path / "fig6_failure_modes.png").exists()  # needs Det and Prob
    assert "no rows with split" in (tmp_path / "risk_report.md").read_text()


def _sim_file(tmp_path):
    path = tmp_path / "sim.parquet"
    td.simulate_score_table(n_users=6, n_queries=3, n_candidates=5, seed=4).to_parquet(path)
    return path


@pytest.mark.parametrize("argv, needle, code", [
    (["--var", "var_missing"], "--var 'var_missing' is not a column", 3),
    (["--base", "score_nope", "--new", "score_prob"], "--base 'score_nope' is not a column", 3),
    (["--n-boot", "0"], "--n-boot must be a whole number >= 1", 7),
    (["--n-boot", "5"], "--n-boot=5 draws cannot give a 95% interval", 7),
    (["--scores", "score_x"], "column 'score_x'", 3),
])
def test_demo_bad_arguments_are_one_line(tmp_path, capsys, argv, needle, code):
    # exit codes: 3 = a column the table lacks (ScoreTableError), 7 = a bad setting
    table = _sim_file(tmp_path)
    assert main(["demo", "--table", str(table), "--out", str(tmp_path / "o"), *argv]) == code
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_demo_out_naming_an_existing_file(tmp_path, capsys):
    table = _sim_file(tmp_path)
    clash = tmp_path / "taken.txt"
    clash.write_text("keep me")
    assert main(["demo", "--table", str(table), "--out", str(clash), "--n-boot", "20"]) == 5
    err = capsys.readouterr().err
    assert "is an existing file" in err and str(clash) in err
    assert clash.read_text() == "keep me"


def test_figures_on_a_table_without_score_columns(tmp_path, capsys):
    path = tmp_path / "bare.csv"
    t = td.simulate_score_table(n_users=4, n_queries=2, n_candidates=4, seed=0)
    t.drop(columns=td.score_columns(t)).to_csv(path, index=False)
    assert main(["figures", str(path), "--out", str(tmp_path / "f")]) == 3  # ScoreTableError
    err = capsys.readouterr().err
    assert "has no score_* column" in err and "--scores" in err and "Traceback" not in err


def test_figures_out_naming_an_existing_file(tmp_path, capsys):
    table = _sim_file(tmp_path)
    clash = tmp_path / "f.png"
    clash.write_bytes(b"x")
    assert main(["figures", str(table), "--out", str(clash)]) == 5
    assert "is an existing file" in capsys.readouterr().err


def test_demo_all_zero_rewards_say_no_reward_signal(tmp_path, capsys):
    path = tmp_path / "zero.parquet"
    t = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)
    t.assign(reward=0.0).to_parquet(path)
    for argv in (["demo", "--table", str(path), "--out", str(tmp_path / "o")],
                 ["analyze", str(path), "--ns", "1,4"]):
        assert main(argv) == td.exceptions.ScoreTableError.exit_code  # the reward column
        err = capsys.readouterr().err
        assert "no reward signal: every reward in split 'val' is 0" in err, argv
