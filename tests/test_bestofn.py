"""BestOfN: the one fitted analysis object (curves -> calibrate -> diagnose -> predict)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag._bestofn_summary import _diag_fields

REF = Path(__file__).parent / "data" / "demo_reference"


@pytest.fixture(scope="module")
def demo_fit():
    # the settings `ttp-diag demo` used before the statistics issue: both shapes, 95% bands from
    # 1000 resamples, seed 0, and the paper's definitions (pooled rho_u, query weights)
    # prediction="law": these numbers pin the paper's law (issue 21 added the refined one)
    return td.BestOfN(shape=("sqrt_log", "gaussian"), ci=0.95, n_boot=1000, rho_u="pooled",
                      weights="query", prediction="law").fit(td.load_demo())


@pytest.fixture(scope="module")
def sim():
    return td.simulate_score_table(n_users=16, n_queries=5, n_candidates=10, seed=3)


def _assert_frame_equal_to_csv(got: pd.DataFrame, name: str) -> None:
    ref = pd.read_csv(REF / f"{name}.csv")
    assert list(got.columns[: len(ref.columns)]) == list(ref.columns)
    for col in ref.columns:
        if ref[col].dtype.kind == "f":
            # equal up to float rounding: calibrate now scales before solving (issue 9.2)
            np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(),
                                       rtol=1e-10, atol=0, equal_nan=True, err_msg=col)
        else:
            assert got[col].astype(str).tolist() == ref[col].astype(str).tolist(), col


def test_demo_numbers_equal_the_cli_before_the_refactor(demo_fit):
    # tests/data/demo_reference/*.csv were written by `ttp-diag demo` before BestOfN existed
    # the paper's collapsed-user correlation is now called rho_collapsed_pooled (issue 8)
    s = demo_fit.summary.rename(columns={"selector": "score"}).drop(columns="kind")
    summ = s.assign(rho_collapsed=s["rho_collapsed_pooled"],
                    rho_total=np.where(s["score"] == "oracle", s["rho_total"],
                                       (1 - s["alpha"]) * s["rho_eff"]
                                       + s["alpha"] * s["rho_collapsed_pooled"]))
    _assert_frame_equal_to_csv(summ, "diagnostics")
    _assert_frame_equal_to_csv(demo_fit.calibration_summary, "calibration")
    _assert_frame_equal_to_csv(demo_fit.curves_, "curves")
    _assert_frame_equal_to_csv(demo_fit.predictions_, "predictions")


def test_analyze_numbers_equal_the_cli_before_the_refactor():
    from ttp_diag.cli.analyze import analyze_table

    ref = json.loads((REF / "analyze_clip.json").read_text())
    got = analyze_table(td.load_demo(), None, ref["ns"], pool="clip", rho_u="pooled",
                        weights="query", prediction="law")
    np.testing.assert_allclose(got["oracle"], ref["oracle"], rtol=1e-13)
    for s, m in ref["models"].items():
        for key in ("observed", "capture_rate", "alpha", "beta", "rho_eff"):
            np.testing.assert_allclose(got["models"][s][key], m[key], rtol=1e-13, err_msg=key)
    # issue 17: the demo's pools hold at most 16 candidates, so N = 20 and 30 are N = 16; the
    # law is now fitted and compared there (the reference placed them at g(20), g(30))
    assert got["n_effective"] == [1, 5, 10, 15, 16, 16]
    cal = td.calibrate(got["n_effective"], got["oracle"], mu=got["random"][0])
    np.testing.assert_allclose(got["calibration"]["c_sigma"], cal.c_sigma, rtol=1e-12)
    for s, m in got["models"].items():
        d = td.diagnose(td.load_demo(), s, rho_u="pooled", weights="query")
        pred = td.predict_bon_curve(got["n_effective"], d, cal)
        np.testing.assert_allclose(m["predicted"], pred, rtol=1e-12, err_msg=s)
        assert m["rel_mae"] == pytest.approx(td.rel_mae(pred, m["observed"]), rel=1e-12)


def test_recipe_matches_the_public_functions_step_by_step(sim):
    ns = [1, 2, 5, 10]
    fit = td.BestOfN(ns=ns, shape="gaussian", prediction="law").fit(sim, ["score_det",
                                                                           "score_prob"])
    rnd = td.bon_curve(sim, "random", ns)["utility"].to_numpy()
    orc = td.bon_curve(sim, "oracle", ns)["utility"].to_numpy()
    cal = td.calibrate(ns, orc, shape="gaussian", mu=float(rnd[0]))
    assert fit.calibration_.c_sigma == pytest.approx(cal.c_sigma, rel=1e-12)
    # mu is the exact random utility, so the law starts at Random for N = 1
    assert fit.predict([1], "oracle")[0] == pytest.approx(rnd[0], rel=1e-12)
    d = td.diagnose(sim, "score_prob")
    np.testing.assert_allclose(fit.predict(ns, "score_prob"), td.predict_bon_curve(ns, d, cal),
                               rtol=1e-12)
    row = fit.summary.set_index("selector").loc["score_prob"]
    obs = td.bon_curve(sim, "score_prob", ns)["utility"].to_numpy()
    assert row["rel_mae"] == pytest.approx(td.rel_mae(td.predict_bon_curve(ns, d, cal), obs))
    assert row["alpha"] == d.alpha and row["beta"] == d.beta


def test_mu_fit_and_fixed_value(sim):
    ns = [1, 3, 6, 10]
    orc = td.bon_curve(sim, "oracle", ns)["utility"].to_numpy()
    fitted = td.BestOfN(ns=ns, mu="fit").fit(sim)
    assert fitted.calibration_.mu == pytest.approx(td.calibrate(ns, orc).mu, rel=1e-12)
    assert fitted.calibration_summary["mu_source"].iloc[0] == "fitted"
    fixed = td.BestOfN(ns=ns, mu=0.25).fit(sim)
    assert fixed.calibration_.mu == 0.25
    with pytest.raises(ValueError, match="mu must be"):
        td.BestOfN(ns=ns, mu="median").fit(sim)


def test_fit_returns_self_and_uses_the_constructors_bootstrap_settings(sim):
    est = td.BestOfN(ns=[1, 4], ci=0.9, n_boot=50, seed=1)
    assert est.fit(sim, "score_det") is est
    assert {"ci_low", "ci_high"} <= set(est.curves_.columns)
    per_user = td.bon_curve(sim, "score_det", [1, 4], per_user=True)
    u = per_user["utility"].to_numpy().reshape(-1, 2)
    from ttp_diag.bon import bootstrap_user_ci

    low, _ = bootstrap_user_ci(u, ci=0.9, n_boot=50, seed=1)
    np.testing.assert_allclose(est.curve("score_det")["ci_low"], low)
    assert (est.ci_, est.n_boot_, est.seed_) == (0.9, 50, 1)
    with pytest.raises(TypeError, match="ci"):  # settings belong in the constructor
        est.fit(sim, ci=0.95)


@pytest.mark.parametrize("ci", [1.5, 0, -0.1, "0.95"])
def test_bad_ci_is_one_clear_error(sim, ci):
    with pytest.raises(ValueError, match="ci must be a confidence level in"):
        td.BestOfN(ns=[1, 2], ci=ci).fit(sim)


def test_not_fitted_and_unknown_names(sim):
    unfitted = td.BestOfN()
    for read in (lambda b: b.summary, lambda b: b.curves_, lambda b: b.predict([2]),
                 lambda b: b.plot(), lambda b: b.calibration()):
        with pytest.raises(td.exceptions.NotFittedError, match="not fitted"):
            read(unfitted)
    assert not hasattr(unfitted, "diagnostics_")  # NotFittedError is an AttributeError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = unfitted.nope
    fit = td.BestOfN(ns=[1, 2]).fit(sim, "score_det")
    kl = fit.calibration("kl")  # a shape not fitted: calibrated on the fly, not stored
    assert kl.shape == "kl" and list(fit.calibrations_) == ["sqrt_log"]
    assert fit.calibration("kl").c_sigma == kl.c_sigma
    with pytest.raises(td.exceptions.ConfigError, match="score_prob"):
        fit.predict([2], "score_prob")
    with pytest.raises(ValueError, match="unknown curve shape"):
        td.BestOfN(shape="cubic").fit(sim)


def test_no_score_column_names_columns_and_fix(sim):
    with pytest.raises(ValueError, match="no score_\\* column.*scores="):
        td.BestOfN(ns=[1, 2]).fit(sim.drop(columns=td.score_columns(sim)))


def test_all_zero_rewards_say_no_reward_signal(sim):
    with pytest.raises(ValueError, match="no reward signal: every reward in split 'val' is 0"):
        td.BestOfN(ns=[1, 2]).fit(sim.assign(reward=0.0))


def test_summary_passes_through_a_tidy_diagnostics_summary():
    class FakeDiag:  # the shape stats' Diagnostics.summary DataFrame takes
        summary = pd.DataFrame({"quantity": ["alpha", "beta"], "estimate": [0.2, 0.1],
                                "ci_low": [0.1, 0.0], "ci_high": [0.3, 0.2],
                                "null_p": [0.01, 0.5]})

    out = _diag_fields(FakeDiag())
    assert out == {"alpha": 0.2, "alpha_ci_low": 0.1, "alpha_ci_high": 0.3,
                   "alpha_null_p": 0.01, "beta": 0.1, "beta_ci_low": 0.0,
                   "beta_ci_high": 0.2, "beta_null_p": 0.5}


def test_unfitted_shape_is_calibrated_on_demand(sim):
    fit = td.BestOfN(ns=[1, 3, 10]).fit(sim)
    kl = fit.calibration("kl")
    orc = fit.curve("oracle")["utility"].to_numpy()
    assert kl.c_sigma == pytest.approx(
        td.calibrate([1, 3, 10], orc, shape="kl", mu=fit.calibration_.mu).c_sigma)


@pytest.mark.parametrize("kind", ["curves", "theory", "oracle", "predicted", "correlations",
                                  "bands", "gain"])
def test_plot_kinds_draw_on_the_given_axes_and_print_nothing(sim, kind, capsys):
    from matplotlib.figure import Figure

    fit = td.BestOfN(ns=[1, 2, 5], ci=0.9, n_boot=30).fit(sim)
    ax = Figure().subplots()
    assert fit.plot(kind, ax=ax) is ax
    assert ax.get_title() and ax.get_ylabel()
    assert fit.plot(kind).figure is not ax.figure
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="kind must be one of"):
        fit.plot("pie")


def test_print_summary_and_str(sim, capsys):
    fit = td.BestOfN(ns=[1, 2, 5]).fit(sim)
    fit.print_summary()
    out = capsys.readouterr().out
    assert "rel_mae" in out and "score_prob" in out and "c_sigma" in out
    assert "relMAE=" in str(fit)
    assert repr(td.BestOfN()).startswith("BestOfN(")
