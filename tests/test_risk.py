"""A-priori risk report: halves, realised rates (Tables A13/A14) and the written files."""

from math import comb

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.analysis import label_risk, risk_report


def hand_table():
    # user a: rewards barely vary; user b: they vary a lot. Two queries each, two candidates.
    return pd.DataFrame({
        "user_id": ["a"] * 4 + ["b"] * 4,
        "query_id": ["p", "p", "q", "q", "r", "r", "s", "s"],
        "cand_id": [0, 1] * 4,
        "reward": [0.0, 0.1, 0.0, 0.1, 0.0, 0.9, 0.2, 0.8],
    })


def test_label_risk_by_hand():
    lr = label_risk(hand_table(), split=None)
    u = lr.users.set_index("user_id")
    assert u.loc["a", "label_std"] == pytest.approx(np.std([0, 0.1, 0, 0.1], ddof=1))
    assert u.loc["b", "label_std"] == pytest.approx(np.std([0, 0.9, 0.2, 0.8], ddof=1))
    assert (u.loc["a", "half"], u.loc["b", "half"]) == ("low", "high")
    assert (u.loc["a", "collapse_risk"], u.loc["b", "collapse_risk"]) == ("high", "low")
    q = lr.queries.set_index("query_id")
    assert q.loc["r", "spread"] == pytest.approx(np.std([0, 0.9], ddof=1))
    # spreads: p = q = 0.0707, s = 0.424, r = 0.636 -> p, q low; r, s high
    assert q["half"].to_dict() == {"p": "low", "q": "low", "r": "high", "s": "high"}
    assert u.loc["a", "low_spread_share"] == 1.0 and u.loc["a", "hacking_risk"] == "high"
    assert lr.user_std_threshold == pytest.approx(u.loc["a", "label_std"])


def test_halves_are_balanced_with_ties():
    t = hand_table()
    t["reward"] = 0.5
    t.loc[t.cand_id == 1, "reward"] = 0.6  # every query and user has the same spread
    lr = label_risk(t, split=None)
    assert (lr.queries.half == "low").sum() == 2 and (lr.users.half == "low").sum() == 1


def collapsing_table():
    # 8 users; Det collapses exactly the 4 hardest, who also get a 10x smaller reward spread
    models = {"det": td.SimulatedRM(alpha=0.5, beta=0.0, rho_plus=0.9, rho_collapsed=0.0),
              "prob": td.SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.9)}
    return td.simulate_score_table(n_users=8, n_queries=10, n_candidates=30, seed=11,
                                   models=models, collapsed_sigma_ratio=0.1)


def test_table_a13_by_construction():
    t = collapsing_table()
    rep = risk_report(t, ["score_det", "score_prob"])
    assert rep.label_split == "train" and rep.notes == []
    row = rep.collapse_table.set_index("score").loc["score_det"]
    assert (row.n_low, row.n_high) == (4, 4)
    assert row.rate_low == 1.0 and row.rate_high == 0.0 and row.rate_all == 0.5
    # two-sided Fisher exact test of [[4, 0], [0, 4]]: 2 extreme tables of C(8, 4) = 70
    assert row.fisher_p == pytest.approx(2 / comb(8, 4))
    prob = rep.collapse_table.set_index("score").loc["score_prob"]
    assert prob.rate_low == 0.0 and prob.rate_high == 0.0
    # the realised flags agree with diagnose on the eval split
    d = td.diagnose(t, "score_det")
    flags = rep.users.set_index("user_id")["collapsed__score_det"]
    assert flags.to_dict() == d.per_user.set_index("user_id")["collapsed"].to_dict()


def test_table_a14_matches_brute_force():
    t = td.simulate_score_table(n_users=10, n_queries=6, n_candidates=8, seed=5)
    rep = risk_report(t, ["score_global"])
    val = t[t.split == "val"]
    spread = val.groupby("query_id")["reward"].std(ddof=1).sort_values(kind="mergesort")
    low = set(spread.index[: len(spread) // 2])
    rho = val.groupby("query_id").apply(
        lambda g: np.corrcoef(g.score_global, g.reward)[0, 1], include_groups=False)
    hacked_low = np.mean([rho[q] < 0 for q in spread.index if q in low])
    hacked_high = np.mean([rho[q] < 0 for q in spread.index if q not in low])
    row = rep.hacking_table.iloc[0]
    assert row.rate_low == pytest.approx(hacked_low) and row.rate_high == pytest.approx(hacked_high)
    assert row.n_low == 30 and row.n_high == 30 and row.n_undefined == 0


def test_without_train_split_falls_back_with_a_note(tmp_path):
    t = collapsing_table()
    val_only = t[t.split == "val"].drop(columns="split")
    rep = risk_report(val_only, ["score_det"], eval_split=None)
    assert rep.label_split is None
    assert any("no rows with split" in n for n in rep.notes)
    # label-only: a table without any score column
    labels = val_only[["user_id", "query_id", "cand_id", "reward"]]
    rep2 = risk_report(labels, [], label_split=None, eval_split=None)
    assert rep2.collapse_table.empty and len(rep2.prior.users) == 8
    files = rep.save(tmp_path)
    for name in ("table_a13_collapse_by_half.csv", "table_a14_hacking_by_half.csv",
                 "risk_users.csv", "risk_report.md", "risk_report.html"):
        assert (tmp_path / name).exists()
    html = (tmp_path / "risk_report.html").read_text()
    assert "Table A13" in html and "http" not in html.lower().replace("http-equiv", "")
    assert "| score |" in (tmp_path / "risk_report.md").read_text()
    assert set(files) >= {"risk_report.html"}
