"""Failure-mode statistics against hand-computed and published reference values."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.analysis import label_std_by_collapse, rescue_analysis, variance_error_correlation


def fake_diagnostics(collapsed_std, normal_std, between_std=()):
    """A Diagnostics stand-in whose per_user frame has the given label stds per group."""
    rho = ([0.0] * len(collapsed_std) + [0.9] * len(normal_std) + [0.3] * len(between_std))
    per_user = pd.DataFrame({
        "user_id": [f"u{i}" for i in range(len(rho))],
        "rho_u": rho,
        "label_std": [*collapsed_std, *normal_std, *between_std],
    })
    return SimpleNamespace(score="score_det", per_user=per_user)


def test_welch_matches_r_reference():
    # scipy's test_ttest_ind_with_uneq_var reference values, computed in R:
    # t.test(c(1, 2, 3), c(1.1, 2.9, 4.2), var.equal = FALSE)
    res = label_std_by_collapse(diagnostics=fake_diagnostics([1, 2, 3], [1.1, 2.9, 4.2]))
    assert res.welch_t == pytest.approx(-0.68649512735572582, rel=1e-10)
    assert res.welch_p == pytest.approx(0.53619490753126731, rel=1e-10)
    # Mann-Whitney by hand: ranks of the collapsed group are 1, 3, 5 -> U = 9 - 6 = 3; under H0
    # U over the 20 equally likely splits has counts 1,1,2,3,3,3,3,2,1,1 for U = 0..9, so the
    # exact two-sided p is 2 * P(U <= 3) = 2 * 7/20.
    assert res.mannwhitney_u == 3.0
    assert res.mannwhitney_p == pytest.approx(0.7)
    assert (res.n_collapsed, res.n_normal) == (3, 3)
    assert res.median_collapsed == 2.0 and res.median_normal == 2.9


def test_complete_separation_gives_exact_p():
    res = label_std_by_collapse(diagnostics=fake_diagnostics([1, 2, 3], [4, 5, 6], [9, 9]))
    assert res.mannwhitney_u == 0.0
    assert res.mannwhitney_p == pytest.approx(2 / 20)  # 2 of the C(6, 3) = 20 splits
    assert list(res.per_user.group) == ["collapsed"] * 3 + ["normal"] * 3 + ["between"] * 2
    assert "Mann-Whitney" in str(res)
    assert res.summary.loc[0, "n_collapsed"] == res.n_collapsed  # tidy one-row DataFrame


def test_empty_group_gives_nan_and_says_so():
    res = label_std_by_collapse(diagnostics=fake_diagnostics([], [4, 5, 6]))
    assert np.isnan(res.mannwhitney_p) and np.isnan(res.welch_p)
    assert "no collapsed user" in str(res)
    with pytest.raises(ValueError, match="normal_threshold"):
        label_std_by_collapse(diagnostics=fake_diagnostics([1], [2]), normal_threshold=0.05)


def test_low_label_variance_users_collapse_in_simulation():
    # the simulation gives the users that collapse under Det a 4x smaller reward spread
    t = td.simulate_score_table(n_users=24, n_queries=6, n_candidates=10, seed=3,
                                collapsed_sigma_ratio=0.25)
    res = label_std_by_collapse(t, "score_det", normal_threshold=0.1)
    # 6 users are simulated collapsed (sampling noise can lift a few above 0.1)
    assert 3 <= res.n_collapsed <= 6 and res.n_collapsed + res.n_normal == 24
    assert res.median_collapsed < res.median_normal
    assert res.mannwhitney_p < 0.01 and res.welch_p < 0.01


def query_rows(qid, user, rewards, base, new):
    return [{"user_id": user, "query_id": qid, "cand_id": i, "split": "val", "reward": r,
             "score_det": b, "score_prob": n}
            for i, (r, b, n) in enumerate(zip(rewards, base, new, strict=True))]


def rescue_table():
    r = np.array([0.1, 0.4, 0.2, 0.8])
    rows = []
    rows += query_rows("q1", "a", r, -r, r)  # det rho = -1, prob rho = +1: rescued
    rows += query_rows("q2", "a", r, r, -r)  # harmed
    rows += query_rows("q3", "b", r, r, 2 * r)  # both positive
    rows += query_rows("q4", "b", r, -r, -3 * r)  # both negative
    rows += query_rows("q5", "b", np.full(4, 0.3), r, r)  # constant reward: undefined
    return pd.DataFrame(rows)


def test_rescue_categories_by_construction():
    res = rescue_analysis(rescue_table(), "score_det", "score_prob")
    cats = dict(zip(res.per_query.query_id, res.per_query.category, strict=True))
    assert cats == {"q1": "rescued", "q2": "harmed", "q3": "both_positive",
                    "q4": "both_negative"}
    assert res.n_queries == 4 and res.n_excluded == 1
    for rate in (res.rescued_rate, res.harmed_rate, res.both_positive_rate,
                 res.both_negative_rate):
        assert rate == pytest.approx(0.25)
    assert res.beta_base == pytest.approx(0.5) and res.beta_new == pytest.approx(0.5)
    assert res.per_query.set_index("query_id").loc["q1", "rho_base"] == pytest.approx(-1.0)


def test_rescue_matches_brute_force_on_simulation():
    t = td.simulate_score_table(n_users=10, n_queries=5, n_candidates=9, seed=4)
    res = rescue_analysis(t, "score_det", "score_prob")
    val = t[t.split == "val"]
    expect = {}
    for qid, g in val.groupby("query_id"):
        a = np.corrcoef(g.score_det, g.reward)[0, 1]
        b = np.corrcoef(g.score_prob, g.reward)[0, 1]
        expect[qid] = "rescued" if a < 0 <= b else "harmed" if b < 0 <= a else \
            "both_positive" if a >= 0 and b >= 0 else "both_negative"
    got = dict(zip(res.per_query.query_id, res.per_query.category, strict=True))
    assert got == expect
    assert res.rescued_rate == pytest.approx(np.mean([v == "rescued" for v in expect.values()]))


def var_table(variance, reward, score):
    n = len(reward)
    return pd.DataFrame({"user_id": "u", "query_id": [f"q{i // 5}" for i in range(n)],
                         "cand_id": np.arange(n) % 5, "reward": reward, "score_prob": score,
                         "var_prob": variance})


def test_spearman_of_monotone_variance_is_one():
    rng = np.random.default_rng(0)
    reward = rng.random(40)
    score = reward + rng.normal(0, 0.2, 40)
    err = np.abs(score - reward)
    res = variance_error_correlation(var_table(err**2, reward, score), "score_prob", "var_prob")
    assert res.spearman_r == pytest.approx(1.0)
    assert res.n == 40 and res.unit == "candidate"
    res = variance_error_correlation(var_table(1.0 / (err + 1e-3), reward, score),
                                     "score_prob", "var_prob")
    assert res.spearman_r == pytest.approx(-1.0)
    # query level: 8 query means
    res = variance_error_correlation(var_table(err**2, reward, score), "score_prob", "var_prob",
                                     unit="query")
    assert res.n == 8
    assert res.summary.loc[0, "unit"] == "query"


def test_variance_errors_name_the_column():
    t = var_table(np.r_[-1.0, np.ones(9)], np.linspace(0, 1, 10), np.linspace(1, 0, 10))
    with pytest.raises(td.ScoreTableError, match="var_prob"):
        variance_error_correlation(t, "score_prob", "var_prob")
    with pytest.raises(td.ScoreTableError, match="var_missing"):
        variance_error_correlation(t, "score_prob", var="var_missing")


def test_no_paper_column_is_a_default():
    t = td.simulate_score_table(n_users=4, n_queries=2, n_candidates=4, seed=0)
    with pytest.raises(ValueError, match="base= and new="):
        rescue_analysis(t)
    with pytest.raises(ValueError, match="score="):
        label_std_by_collapse(t)
    with pytest.raises(TypeError):
        variance_error_correlation(t)  # score and var are required


def test_auto_normal_threshold_falls_back_to_every_non_collapsed_user():
    with_normal = label_std_by_collapse(diagnostics=fake_diagnostics([1, 2], [3, 4], [5]),
                                        normal_threshold="auto")
    assert with_normal.normal_threshold == 0.5 and with_normal.n_normal == 2
    weak = label_std_by_collapse(diagnostics=fake_diagnostics([1, 2], [], [5, 6, 7]),
                                 normal_threshold="auto")
    assert weak.normal_threshold == 0.1 and weak.n_normal == 3  # the rho_u = 0.3 users
    assert weak.mannwhitney_p == pytest.approx(2 / 10)  # complete separation, C(5, 2) = 10
