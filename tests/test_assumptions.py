"""Sub-Gaussian parameter and linearity checks against closed forms and known truth."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttp_diag as td
from ttp_diag.analysis import (
    ecdf_envelope,
    linearity_check,
    sub_gaussian_check,
    sub_gaussian_parameter,
)


def bernoulli_proxy_variance(p):
    """Optimal sub-Gaussian variance proxy of a centred Bernoulli(p) (Kearns & Saul 1998)."""
    if p == 0.5:
        return 0.25
    return (1 - 2 * p) / (2 * np.log((1 - p) / p))


def test_rademacher_parameter_is_one():
    s, lam = sub_gaussian_parameter(np.array([-1.0, 1.0] * 50), return_lambda=True)
    assert s == pytest.approx(1.0, abs=1e-12)
    assert lam == 0.0  # the bound is tightest as lambda -> 0 (log cosh l <= l^2 / 2)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.2, 0.3, 0.5])
def test_two_point_distribution_matches_closed_form(p):
    n = 200
    k = int(round(p * n))
    x = np.r_[np.ones(k), np.zeros(n - k)]  # the empirical law is exactly Bernoulli(p)
    assert sub_gaussian_parameter(x) ** 2 == pytest.approx(bernoulli_proxy_variance(k / n),
                                                           rel=1e-7)


def test_gaussian_sample_gives_its_std():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=20000)
    s = sub_gaussian_parameter(x)
    assert x.std() <= s < 1.03 * x.std()


def test_mgf_bound_holds_on_an_independent_grid_and_is_tight():
    x = np.random.default_rng(2).gamma(2.0, size=400)  # skewed: optimum off lambda = 0
    s = sub_gaussian_parameter(x)
    y = x - x.mean()
    lams = np.linspace(-10, 10, 4001) / y.std()
    lams = lams[lams != 0]
    mgf = np.array([np.mean(np.exp(lam * y)) for lam in lams])
    assert np.all(mgf <= np.exp(lams**2 * s**2 / 2) * (1 + 1e-9))
    # a 1% smaller parameter violates the bound somewhere on the grid: s is the smallest
    assert np.any(mgf > np.exp(lams**2 * (0.99 * s) ** 2 / 2))


def test_scale_and_shift_equivariance():
    x = np.random.default_rng(3).exponential(size=300)
    assert sub_gaussian_parameter(5 * x - 7) == pytest.approx(5 * sub_gaussian_parameter(x),
                                                              rel=1e-9)


def test_constant_and_bad_input():
    assert sub_gaussian_parameter(np.full(10, 0.3)) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        sub_gaussian_parameter([1.0])
    with pytest.raises(ValueError, match="NaN"):
        sub_gaussian_parameter([1.0, np.nan, 2.0])


def test_ecdf_within_the_envelope():
    x = np.random.default_rng(4).normal(size=500)
    env = ecdf_envelope(x)
    assert list(env.columns) == ["x", "ecdf", "gaussian_cdf", "envelope_low", "envelope_high"]
    assert ((env.ecdf >= env.envelope_low - 1e-12) & (env.ecdf <= env.envelope_high + 1e-12)).all()
    assert env.ecdf.iloc[0] == 0.0 and env.ecdf.iloc[-1] == 1.0


def small_table():
    rng = np.random.default_rng(5)
    rows = []
    for u in range(3):
        for q in range(4):
            for c in range(10):
                rows.append({"user_id": f"u{u}", "query_id": f"u{u}/q{q}", "cand_id": c,
                             "split": "val", "reward": (u + 1) * rng.random() + q,
                             "score_a": rng.random()})
    return pd.DataFrame(rows)


def test_sub_gaussian_check_per_user_matches_the_function():
    t = small_table()
    chk = sub_gaussian_check(t)
    assert list(chk.per_user.user_id) == ["u0", "u1", "u2"]
    for r in chk.per_user.itertuples():
        x = t.loc[t.user_id == r.user_id, "reward"].to_numpy()
        assert r.s == pytest.approx(sub_gaussian_parameter(x))
        assert r.std == pytest.approx(x.std())
        assert r.s >= r.std - 1e-12
        assert r.envelope_violation < 1e-9
    # per-query centring removes the query offsets (q adds 0..3 to every reward)
    chk_q = sub_gaussian_check(t, center="query")
    assert (chk_q.per_user["std"] < chk.per_user["std"]).all()
    assert chk.representative_user() in set(t.user_id)
    with pytest.raises(ValueError, match="center"):
        sub_gaussian_check(t, center="bad")


def gaussian_pairs(n_users=5, n=3000, rho=0.6, seed=6, scales=(1.0, 10.0, 0.1, 3.0, 0.5)):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        z = rng.normal(size=n)
        r = rho * z + np.sqrt(1 - rho**2) * rng.normal(size=n)
        rows.append(pd.DataFrame({
            "user_id": f"u{u}", "query_id": [f"u{u}/q{i // 20}" for i in range(n)],
            "cand_id": np.arange(n) % 20, "reward": 5 + scales[u] * r, "score_g": 100 * z,
        }))
    return pd.concat(rows, ignore_index=True)


def test_linearity_of_jointly_gaussian_data_recovers_rho():
    t = gaussian_pairs()
    res = linearity_check(t, ["score_g"], split=None, n_bins=10)
    row = res.summary.iloc[0]
    assert row.rho == pytest.approx(0.6, abs=0.02)
    assert row.slope == pytest.approx(row.rho, abs=0.03)
    assert row.linear_r2 > 0.98
    assert row.n_groups_dropped == 0
    assert len(res.bins) == 10 and res.bins["count"].sum() == len(t)


def test_linearity_detects_curvature():
    rng = np.random.default_rng(7)
    x = rng.normal(size=5000)
    t = pd.DataFrame({"user_id": "u", "query_id": np.arange(5000) // 10,
                      "cand_id": np.arange(5000) % 10, "score_x": x,
                      "reward": x**2 + 0.1 * rng.normal(size=5000)})
    row = linearity_check(t, ["score_x"], split=None).summary.iloc[0]
    assert row.quad_coef > 0.5  # E[x^2 | x] = x^2: quadratic coefficient ~ 1 in z units
    assert row.linear_r2 < 0.2


def test_linearity_drops_constant_groups():
    t = gaussian_pairs(n_users=3, n=200)
    t.loc[t.user_id == "u1", "score_g"] = 1.0
    res = linearity_check(t, ["score_g"], split=None)
    assert res.summary.iloc[0].n_groups_dropped == 1
    assert res.summary.iloc[0].n == 400


def test_linearity_on_simulated_table_uses_every_score():
    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=8, seed=0)
    res = linearity_check(t)
    assert list(res.summary.score) == td.score_columns(t)
    with pytest.raises(ValueError, match="not in the table"):
        linearity_check(t, ["score_missing"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=60))
def test_parameter_is_at_least_the_std(values):
    x = np.asarray(values)
    s = sub_gaussian_parameter(x)
    # the lambda -> 0 limit of the MGF ratio is the variance, so s >= std always
    assert s >= x.std() * (1 - 1e-9) - 1e-12
