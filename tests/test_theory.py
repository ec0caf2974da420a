"""Theory layer pinned to published tables and closed forms."""

import numpy as np
import pytest

import ttp_diag as td

# Harter (1961), expected value of the largest of N standard normals (DESIGN.md).
HARTER = {2: 0.56419, 3: 0.84628, 5: 1.16296, 10: 1.53875, 20: 1.86748, 50: 2.24907,
          100: 2.50759}


def test_expected_max_normal_matches_harter():
    ns = np.array(list(HARTER))
    got = td.expected_max_normal(ns)
    np.testing.assert_allclose(got, list(HARTER.values()), atol=1e-4)
    assert td.expected_max_normal(1) == 0.0
    assert td.expected_max_normal(2) == pytest.approx(1 / np.sqrt(np.pi), abs=1e-9)


def test_expected_max_normal_matches_order_statistic_simulation_for_large_n():
    # N = 1000 is outside Harter's table: check against a seeded simulation (SE ~ 0.0014)
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((20000, 1000)).max(axis=1).mean()
    assert td.expected_max_normal(1000) == pytest.approx(sim, abs=0.006)


def test_sqrt_2_log_bound_overshoots_and_converges_slowly():
    # sqrt(2 ln N) / E[max_N] from the Harter values: 2.09 at N=2, 1.54 at N=5, 1.21 at N=100.
    # (DESIGN.md's "17-52%" covers N >= 5 only.)
    ns = np.array(list(HARTER))
    ratio = np.sqrt(2 * np.log(ns)) / td.expected_max_normal(ns)
    np.testing.assert_allclose(ratio[[0, 2, -1]], [2.0869, 1.5427, 1.2103], atol=1e-3)
    assert np.all(np.diff(ratio) < 0)


@pytest.mark.parametrize("shape", td.SHAPES)
def test_shapes_zero_at_one_and_increasing(shape):
    ns = np.arange(1, 200)
    g = td.curve_shape(ns, shape)
    assert g[0] == 0.0
    assert np.all(np.diff(g) > 0)


def test_shape_errors():
    with pytest.raises(ValueError, match="unknown curve shape"):
        td.curve_shape([2], "cubic")
    with pytest.raises(ValueError, match=">= 1"):
        td.curve_shape([0], "sqrt_log")
    with pytest.raises(ValueError, match="NaN"):
        td.expected_max_normal([np.nan])


def test_laws_reduce_to_each_other():
    ns = [1, 5, 10, 30]
    mu, sigma, c = 0.12, 0.04, 1.3
    oracle = td.oracle_bound(ns, mu, sigma, c=c)
    # rho = 1 gives the oracle, rho = 0 random
    np.testing.assert_allclose(td.correlation_scaling(ns, mu, sigma, 1.0, c=c), oracle)
    np.testing.assert_allclose(td.correlation_scaling(ns, mu, sigma, 0.0, c=c), mu)
    # unified law with alpha = beta = 0 is Lemma 4.2 with rho_plus
    np.testing.assert_allclose(
        td.unified_law(ns, mu=mu, c_sigma=c * sigma, alpha=0, beta=0, rho_plus=0.5,
                       rho_minus=-0.2),
        td.correlation_scaling(ns, mu, sigma, 0.5, c=c))
    # Eq. 30 with rho_collapsed = 0 is Proposition 4.4
    kw = dict(mu=mu, c_sigma=0.05, alpha=0.3, beta=0.2, rho_plus=0.7, rho_minus=-0.4)
    np.testing.assert_allclose(td.collapsed_refinement(ns, rho_collapsed=0.0, **kw),
                               td.unified_law(ns, **kw))
    # hand value: (1-0.3) * (0.8*0.7 - 0.2*0.4) = 0.336
    assert td.total_correlation(0.3, 0.2, 0.7, -0.4) == pytest.approx(0.336)
    assert td.effective_correlation(0.2, 0.7, -0.4) == pytest.approx(0.48)


def test_law_input_errors():
    with pytest.raises(ValueError, match="alpha must be a rate"):
        td.unified_law([2], mu=0, c_sigma=1, alpha=1.5, beta=0, rho_plus=0.5, rho_minus=-0.1)
    with pytest.raises(ValueError, match="rho_plus must be a correlation"):
        td.effective_correlation(0.1, 2.0, -0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        td.oracle_bound([2], 0.0, -1.0)


@pytest.mark.parametrize("shape", td.SHAPES)
def test_calibrate_recovers_exact_parameters(shape):
    ns = np.array([1, 5, 10, 15, 20, 30])
    y = 0.13 + 0.042 * td.curve_shape(ns, shape)
    cal = td.calibrate(ns, y, shape=shape)
    assert cal.mu == pytest.approx(0.13, abs=1e-12)
    assert cal.c_sigma == pytest.approx(0.042, abs=1e-12)
    assert cal.r2 == pytest.approx(1.0)
    np.testing.assert_allclose(cal.predict(ns), y, atol=1e-12)


def test_calibrate_matches_statsmodels_ols_and_ci_covers_truth():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    ns = np.array([1, 2, 3, 5, 8, 10, 15, 20, 30])
    g = td.curve_shape(ns, "sqrt_log")
    y = 0.1 + 0.05 * g + 0.002 * rng.standard_normal(ns.size)
    cal = td.calibrate(ns, y, ci=0.95)
    fit = sm.OLS(y, sm.add_constant(g)).fit()
    np.testing.assert_allclose([cal.mu, cal.c_sigma], fit.params, rtol=1e-10)
    np.testing.assert_allclose([cal.mu_ci, cal.c_sigma_ci], fit.conf_int(0.05), rtol=1e-8)
    assert cal.r2 == pytest.approx(fit.rsquared)
    assert cal.c_sigma_ci[0] < 0.05 < cal.c_sigma_ci[1]


def test_calibrate_fixed_mu_and_errors():
    ns = np.array([1, 10, 30])
    cal = td.calibrate(ns, 0.2 + 0.03 * td.curve_shape(ns, "gaussian"), shape="gaussian",
                       mu=0.2)
    assert cal.mu == 0.2 and cal.c_sigma == pytest.approx(0.03)
    with pytest.raises(ValueError, match="two distinct N"):
        td.calibrate([5, 5], [0.1, 0.1])
    with pytest.raises(ValueError, match="same length"):
        td.calibrate([1, 5], [0.1])
    two = td.calibrate([1, 5], [0.1, 0.2])
    assert two.c_sigma_ci == (-np.inf, np.inf)


def test_predict_bon_curve_from_numbers_and_objects():
    ns = np.array([1, 5, 10, 30])
    kw = dict(alpha=0.2, beta=0.25, rho_plus=0.6, rho_minus=-0.2)
    by_number = td.predict_bon_curve(ns, mu=0.1, c_sigma=0.05, **kw)
    np.testing.assert_allclose(by_number, td.unified_law(ns, mu=0.1, c_sigma=0.05, **kw))

    class D:  # any object with the attributes will do
        alpha, beta, rho_plus, rho_minus, rho_collapsed = 0.2, 0.25, 0.6, -0.2, -0.05

    cal = td.calibrate(ns, 0.1 + 0.05 * td.curve_shape(ns, "sqrt_log"))
    np.testing.assert_allclose(td.predict_bon_curve(ns, D(), cal), by_number, atol=1e-12)
    refined = td.predict_bon_curve(ns, D(), cal, refined=True)
    assert np.all(refined[1:] < by_number[1:])  # negative rho_collapsed lowers the curve
    # explicit keywords override the objects
    np.testing.assert_allclose(td.predict_bon_curve(ns, D(), cal, alpha=0.0),
                               td.unified_law(ns, mu=0.1, c_sigma=0.05, **{**kw, "alpha": 0.0}),
                               atol=1e-12)
    with pytest.raises(ValueError, match="needs"):
        td.predict_bon_curve(ns, mu=0.1)


@pytest.mark.parametrize("shape", ["sqrt_log", "gaussian"])
def test_n_to_close_gap_matches_brute_force(shape):
    rho, n_ref = 0.45, 30
    target = 0.6 * td.curve_shape(n_ref, shape)
    g = td.curve_shape(np.arange(1, 5000), shape)
    brute = int(np.argmax(rho * g >= target)) + 1
    assert td.n_to_close_gap(0.6, rho_total=rho, shape=shape, n_ref=n_ref) == brute
    assert td.n_to_close_gap(0.6, rho_total=0.0, shape=shape) == np.inf
    res = td.n_to_close_gap([0.2, 0.6], rho_total=rho, shape=shape, n_ref=n_ref)
    assert res[0] <= res[1] == brute
