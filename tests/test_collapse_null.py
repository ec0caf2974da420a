"""The collapse test's null is "no collapsed user", with hacking allowed (issue 20).

The first version tested "every query shares one correlation": queries hacked at random make
users differ in how many of their queries are hacked, so it rejected with no collapsed user at
all (9 of 10 160-user tables at p <= 0.05). The generator is local and hacks each query
independently (``td.simulate_score_table`` hacks exactly ``round(beta * q)`` queries of every
user, which hides the problem).
"""

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.diagnostics import inference as inf


def hacked_table(n_users=40, n_queries=10, n_candidates=20, hack_share=0.3, rho_plus=0.6,
                 rho_minus=-0.4, collapse_share=0.0, seed=0):
    """Known truth: the first ``round(collapse_share * n_users)`` users collapsed (every query
    at rho 0); every other user's queries hacked independently with probability
    ``hack_share`` (rho ``rho_minus``), else healthy (``rho_plus``)."""
    rng = np.random.default_rng(seed)
    nq = n_users * n_queries
    user = np.repeat(np.arange(n_users), n_queries)
    collapsed = np.arange(n_users) < round(collapse_share * n_users)
    hacked = ~collapsed[user] & (rng.random(nq) < hack_share)
    rho = np.where(collapsed[user], 0.0, np.where(hacked, rho_minus, rho_plus))[:, None]
    x = rng.standard_normal((nq, n_candidates))
    s = rho * x + np.sqrt(1.0 - rho**2) * rng.standard_normal((nq, n_candidates))
    return pd.DataFrame({
        "user_id": np.repeat(user, n_candidates).astype(str),
        "query_id": np.repeat(np.arange(nq), n_candidates).astype(str),
        "cand_id": np.tile(np.arange(n_candidates), nq),
        "reward": x.ravel(), "score_x": s.ravel()})


def _p_alpha(seed, **kw):
    d = td.diagnose(hacked_table(seed=seed, **kw), "score_x", n_null=200, seed=seed,
                    ns=[1, 4, 20])
    return d.null["alpha_p"], d


def test_size_under_hacking_without_collapse():
    # 80 tables, no collapsed user, 30% of queries hacked at random: a test of size 0.05
    # rejects about 4 of 80 (binomial sd 0.024; 0.12 is 3 sd above). The old null ("one shared
    # correlation") gave p = 1/201 on each of seeds 0-19. Measured with this null: 5 of seeds
    # 0-79 and 7 of seeds 0-159 reject (0.044)
    ps = np.array([_p_alpha(seed)[0] for seed in range(80)])
    assert (ps <= 0.05).mean() <= 0.12, np.sort(ps)
    assert 0.3 < ps.mean() < 0.7  # roughly uniform, not piled at 1 (a test that never rejects)


def test_power_under_real_collapse_with_hacking():
    ps = np.array([_p_alpha(seed, collapse_share=0.25)[0] for seed in range(20)])
    assert (ps <= 0.05).mean() >= 0.9, np.sort(ps)


def test_line_names_the_null_tested():
    p, d = _p_alpha(0)
    text = str(d)
    assert "no collapsed user" in text and "hacking allowed" in text
    assert "one shared rho" not in text
    row = d.summary.set_index("quantity").loc["alpha"]
    assert "no collapsed user" in row["p_text"]
    # the fitted no-collapse mixture behind the null is reported: 30% of queries hacked
    assert d.null["collapse_null_beta"] == pytest.approx(0.3, abs=0.1)
    assert d.null["collapse_null_rho_minus"] < 0 < d.null["collapse_null_rho_plus"]


def test_no_collapse_fit_of_the_mixture():
    # collapse=False fixes pi at 0: a collapsed user's queries must be taken by the active
    # components (here the hacked one, at rho ~ 0), and alpha is 0 by construction
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(20), 8)
    true = np.where(user < 5, 0.0, 0.6)
    se = np.full(user.size, 1 / np.sqrt(27))
    z = np.arctanh(true) + se * rng.standard_normal(user.size)
    a, b, fit = inf.joint_mixture(z, se, np.ones(user.size), user, 20, np.arctanh(0.1),
                                  collapse=False)
    assert a == 0.0 and fit["pi"] == 0.0
    assert b == pytest.approx(0.25, abs=0.06)
    a1, _, _ = inf.joint_mixture(z, se, np.ones(user.size), user, 20, np.arctanh(0.1))
    assert a1 == pytest.approx(0.25, abs=0.06)
