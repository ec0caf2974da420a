"""The ``ttp-diag demo`` report links to an evaluation folder when one exists."""

import json

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.cli import main
from ttp_diag.cli.demo import find_eval_dir
from ttp_diag.exceptions import InputFileError
from ttp_diag.full_report import evaluation_summary


def _fake_eval(ev):
    """A minimal evaluation folder with hand-set numbers (what `ttp-diag evaluate` writes)."""
    (ev / "tables").mkdir(parents=True)
    (ev / "figures").mkdir()
    (ev / "eval_summary.json").write_text(json.dumps({"adapt_users": ["u1", "u2", "u3"]}))
    rows = [("zero_shot", 0.05, 0.02, 0.08), ("icl_rag_k2", 0.09, 0.06, 0.12),
            ("args_global", 0.03, 0.01, 0.05), ("bon_oracle", 0.20, 0.15, 0.25)]
    long = pd.DataFrame([dict(method=m, metric="rouge1", mean=a, ci_low=lo, ci_high=hi,
                              n_users=3) for m, a, lo, hi in rows])
    long.to_csv(ev / "tables" / "summary_long.csv", index=False)
    (ev / "tables" / "summary_long.md").write_text("| x |\n")
    pd.DataFrame({"family": "best_of_n", "upstream": ["rm_accuracy", "rho_eff", "win_rate"],
                  "quality": "rouge1", "statistic": "kendall_tau",
                  "estimate": [-0.2, 0.6, np.nan], "ci_low": [-0.5, 0.1, np.nan],
                  "ci_high": [0.3, 0.9, np.nan], "n_points": [3, 4, 0], "n_users": 3}).to_csv(
        ev / "tables" / "table6_rank_agreement.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1])
    fig.savefig(ev / "figures" / "comparison.png")
    plt.close(fig)


def test_evaluation_summary_states_the_numbers(tmp_path):
    ev = tmp_path / "eval"
    _fake_eval(ev)
    s = evaluation_summary(ev)
    assert "4 generation methods on 3 adaptation users" in s
    # the oracle is a ceiling, not a method to beat: best is icl_rag_k2, worst args_global
    assert "icl_rag_k2 at 0.090 [0.060, 0.120]" in s and "args_global at 0.030" in s
    assert "zero-shot 0.050" in s and "reaches 0.200" in s
    assert "rho_eff ranks the reward models most" in s
    assert "0.600 [0.100, 0.900] over 4 reward models (best_of_n decoding" in s


def test_evaluation_summary_refuses_a_folder_that_is_not_one(tmp_path):
    with pytest.raises(InputFileError, match="eval_summary.json not found"):
        evaluation_summary(tmp_path)


def test_find_eval_dir_detects_the_folder_beside_the_table(tmp_path):
    table = tmp_path / "scores.parquet"
    assert find_eval_dir(str(table), None) is None  # no eval/ yet
    _fake_eval(tmp_path / "eval")
    assert find_eval_dir(str(table), None) == (tmp_path / "eval").resolve()
    assert find_eval_dir(str(table), "none") is None
    assert find_eval_dir(str(table), str(tmp_path / "x")) == tmp_path / "x"


def test_demo_report_links_the_evaluation(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0).to_parquet(
        run / "scores.parquet")
    _fake_eval(run / "eval")
    out = tmp_path / "out"
    assert main(["demo", "--table", str(run / "scores.parquet"), "--out", str(out),
                 "--n-boot", "50"]) == 0
    html = (out / "report.html").read_text()
    md = (out / "summary.md").read_text()
    assert "Generation evaluation" in html and "icl_rag_k2 at 0.090" in html
    assert (out / "evaluation_comparison.png").is_file()
    assert "../run/eval/tables/summary_long.md" in md
    # and leaves it out when asked
    out2 = tmp_path / "out2"
    assert main(["demo", "--table", str(run / "scores.parquet"), "--out", str(out2),
                 "--n-boot", "50", "--eval-dir", "none"]) == 0
    assert "Generation evaluation" not in (out2 / "report.html").read_text()
