"""One number per quantity: the demo's printout, its report and CSVs, and `analyze --json` agree
(issue 20: capture for one reward model used to have four values, 0.037/0.057/0.054/0.045)."""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.cli import main


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one_capture")
    path = tmp / "t.parquet"
    t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=4,
                                collapsed_sigma_ratio=0.5)
    # de-duplicated pools of different sizes, as in the demo data: the pool rule matters
    t = t[~((t["query_id"].astype(str).str.endswith(("1", "3"))) & (t["cand_id"] >= 6))]
    t.to_parquet(path)
    out = tmp / "demo"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--table", str(path), "--out", str(out), "--n-boot", "60"]) == 0
    printed = buf.getvalue()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["analyze", str(path), "--json"]) == 0
    return dict(table=t, printed=printed, analyze=json.loads(buf.getvalue()),
                diag=pd.read_csv(out / "diagnostics.csv"),
                curves=pd.read_csv(out / "curves.csv"),
                report=html.unescape((out / "report.html").read_text()))


SCORES = ("score_global", "score_det", "score_prob")


def test_capture_has_one_value_everywhere(outputs):
    js, diag = outputs["analyze"], outputs["diag"]
    ns = js["ns"]
    t = outputs["table"]
    assert ns == td.bestofn.default_ns(t)  # analyze and demo use one N grid by default
    for s in SCORES:
        m = js["models"][s]
        # the definition, from the exact curves: gain-weighted over the grid, user means
        rnd = td.bon_curve(t, "random", ns, pool="clip")["utility"].to_numpy()
        orc = td.bon_curve(t, "oracle", ns, pool="clip")["utility"].to_numpy()
        sel = td.bon_curve(t, s, ns, pool="clip")["utility"].to_numpy()
        want = (sel - rnd).sum() / (orc - rnd).sum()
        assert m["capture_rate"] == pytest.approx(want, abs=1e-12)  # analyze --json
        assert m["capture"] == pytest.approx(want, abs=1e-12)  # its diagnosis
        row = diag[(diag["selector"] == s) & (diag["shape"] == "sqrt_log")].iloc[0]
        assert row["mean_capture"] == pytest.approx(want, abs=1e-12)  # diagnostics.csv
        assert row["capture"] == pytest.approx(want, abs=1e-12)
        label = td.names.selector_label(s)
        # the printout and the report's lines show the same number at their precision
        line = next(x for x in outputs["printed"].splitlines() if x.startswith(label))
        assert f"capture={want:.3f}" in line
        sig = next(x for x in outputs["report"].splitlines()
                   if x.startswith(f"{label}:") and "capture" in x)
        shown = float(re.search(r"capture[^=]*= (-?\d\.\d{3})", sig).group(1))
        assert shown == pytest.approx(want, abs=5e-4)
    assert re.search(r"gain-weighted over N in 1\.\.\d+", outputs["printed"])


def test_alpha_beta_rho_eff_and_gains_agree(outputs):
    js, diag, curves = outputs["analyze"], outputs["diag"], outputs["curves"]
    for s in SCORES:
        m = js["models"][s]
        row = diag[(diag["selector"] == s) & (diag["shape"] == "sqrt_log")].iloc[0]
        label = td.names.selector_label(s)
        line = next(x for x in outputs["printed"].splitlines() if x.startswith(label))
        for q in ("alpha", "beta", "rho_eff"):
            assert row[q] == pytest.approx(m[q], abs=1e-12), q
            shown = f"{q}={m[q]:+.3f}" if q == "rho_eff" else f"{q}={m[q]:.3f}"
            assert shown in line, (q, line)
        # gains over random at every N: curves.csv (demo) = analyze --json
        c = curves[curves["selector"] == s].sort_values("n")
        rnd = curves[curves["selector"] == "random"].sort_values("n")
        assert c["n"].tolist() == js["ns"]
        np.testing.assert_allclose(c["utility"].to_numpy() - rnd["utility"].to_numpy(),
                                   np.subtract(m["observed"], js["random"]), atol=1e-12)
