"""Variance-based selectors against brute-force enumeration of every N-subset."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.analysis import add_selector_columns, selector_table
from ttp_diag.analysis.selectors import _filtered_mask


def random_table(seed=0, n_queries=3, pool=7):
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_queries):
        for c in range(pool):
            rows.append({"user_id": "u", "query_id": f"q{q}", "cand_id": c, "split": "val",
                         "reward": rng.random(), "score_prob": rng.normal(0.5, 0.2),
                         "var_prob": rng.uniform(0.01, 0.2)})
    return pd.DataFrame(rows)


def rule_choice(sub, mu, var, rule, dropped):
    """Index the rule picks from the subset ``sub`` of one query (continuous values: no ties)."""
    sd = np.sqrt(var)
    kind, param = rule
    if kind == "mean":
        key = mu
    elif kind == "lcb":
        key = mu - param * sd
    elif kind == "ucb":
        key = mu + param * sd
    elif kind == "snr":
        key = mu / sd
    elif kind == "filter":
        kept = [i for i in sub if not dropped[i]]
        pool = kept if kept else list(sub)  # only filtered ones sampled: fall back to the mean
        return max(pool, key=lambda i: mu[i])
    return max(sub, key=lambda i: key[i])


def brute_force(table, rule, n, p=None):
    utils = []
    for _, g in table.groupby("query_id"):
        mu, var, r = (g[c].to_numpy() for c in ("score_prob", "var_prob", "reward"))
        m = len(g)
        dropped = np.zeros(m, bool)
        if p is not None:
            k = math.floor(p / 100 * m + 1e-9)
            dropped[np.argsort(-var, kind="stable")[:k]] = True
        subs = list(itertools.combinations(range(m), n))
        utils.append(np.mean([r[rule_choice(s, mu, var, rule, dropped)] for s in subs]))
    return float(np.mean(utils))


RULES = [
    ("score_prob", ("mean", None), None),
    ("score_prob_lcb0.5", ("lcb", 0.5), None),
    ("score_prob_lcb2", ("lcb", 2.0), None),
    ("score_prob_ucb1", ("ucb", 1.0), None),
    ("score_prob_varfilter20", ("filter", None), 20),
    ("score_prob_varfilter50", ("filter", None), 50),
    ("score_prob_snr", ("snr", None), None),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selector_columns_match_brute_force(seed):
    t = random_table(seed)
    t2, cols = add_selector_columns(t, "score_prob", "var_prob", lcb_betas=[0.5, 2], ucb_betas=[1],
                                    var_filter_ps=[20, 50], snr=True)
    assert cols == [c for c, _, _ in RULES]
    ns = [1, 2, 3, 5, 7]
    for col, rule, p in RULES:
        curve = td.bon_curve(t2, col, ns)
        for n, u in zip(curve.n, curve.utility, strict=True):
            assert u == pytest.approx(brute_force(t, rule, n, p), abs=1e-12), (col, n)


def test_filter_drops_floor_of_p_percent_per_query():
    var = np.r_[np.arange(30.0), np.arange(7.0)]
    q = np.r_[np.zeros(30, int), np.ones(7, int)]
    mask = _filtered_mask(q, var, 10.0)
    assert mask[:30].sum() == 3 and mask[30:].sum() == 0  # floor(3.0) = 3, floor(0.7) = 0
    assert set(np.flatnonzero(mask[:30])) == {27, 28, 29}  # the largest variances
    ties = _filtered_mask(np.zeros(4, int), np.ones(4), 50.0)
    assert ties.tolist() == [True, True, False, False]  # ties: earlier rows first


def test_snr_needs_positive_variance_and_errors_name_columns():
    t = random_table()
    t.loc[0, "var_prob"] = 0.0
    with pytest.raises(td.ScoreTableError, match="var_prob"):
        add_selector_columns(t, "score_prob", "var_prob")
    # the other rules accept a zero variance
    t2, cols = add_selector_columns(t, "score_prob", "var_prob", snr=False)
    assert "score_prob_snr" not in cols
    with pytest.raises(td.ScoreTableError, match="score_nope"):
        add_selector_columns(t, "score_nope", "var_prob")
    with pytest.raises(ValueError, match="percentages"):
        add_selector_columns(t, "score_prob", "var_prob", var_filter_ps=[100], snr=False)


def test_selector_table_is_table_a10():
    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=8, seed=0)
    tab = selector_table(t, "score_prob", "var_prob", ns=[1, 4, 8])
    assert tab.loc[0, "strategy"] == "Mean only" and tab.loc[0, "delta_vs_mean"] == 0.0
    assert list(tab.columns) == ["strategy", "column", "N=1", "N=4", "N=8", "delta_vs_mean"]
    assert {"LCB-0.5", "UCB-2", "Var-Filter-30%", "SNR"} <= set(tab.strategy)
    # every rule picks at random at N = 1
    assert np.allclose(tab["N=1"], tab.loc[0, "N=1"])
    ref = td.bon_curve(t, "score_prob", [8])["utility"].iloc[0]
    assert tab.loc[0, "N=8"] == pytest.approx(ref)
