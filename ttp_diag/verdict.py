"""The verdict: what an analysis says, in a few sentences per reward model, built from numbers.

Every sentence is computed from the estimates, their intervals and the null tests; none is
written by hand. The thresholds and the wording live here, in one place:

* **Gain over random** at the largest N. A *real gain* when the interval of the paired
  difference (reward model minus random, per user; :func:`ttp_diag.compare_selectors`)
  lies above 0, a *loss* when it lies below 0, else *not distinguishable from random*. With
  fewer than :data:`MIN_USERS` users there is no honest interval: the sentence says the sample
  is too small. The share of the oracle's gain (oracle minus random at the same N) follows.
* **Collapse** (alpha, users with rho_u below the collapse threshold) is called collapse only
  when the null test of *no collapsed user* (every user active, each query healthy or hacked
  as fitted: :func:`ttp_diag.diagnostics.inference.null_model`) rejects at :data:`LEVEL`;
  otherwise the sentence says the rate is *not distinguishable from a reward model with no
  collapsed user* and gives the rate that null expects, so that a null rate above the observed
  one is not read as a contradiction.
* **Hacking** (beta, queries of active users ranked against the reward) is called *reward
  hacking beyond noise* only when the null of no hacking (each user's own correlation, drawn
  with each query's pool size) rejects at :data:`LEVEL`.
* **The law's prediction**: relMAE (error relative to the utility's level) beside the gain
  error (sum |pred - obs| / sum |obs - random|: error relative to the gain over random; a flat
  "no gain" prediction scores 1). A gain error of at most :data:`GAIN_ERROR_GOOD` is *good*,
  :data:`GAIN_ERROR_POOR` or more is *no better than predicting no gain*. When the gain
  itself is within noise the sentence says that a small level error says little.

:func:`model_verdict` takes plain numbers, so any result that has them (the evaluation and
zoo tables, a JSON file of ``ttp-diag analyze``) can get the same sentences;
:meth:`ttp_diag.BestOfN.verdict` and :meth:`ttp_diag.Diagnostics.verdict` collect the numbers
and return a :class:`Verdict`.

Examples
--------
>>> from ttp_diag.verdict import model_verdict
>>> print(model_verdict("Prob RM", n=16, gain=0.012, gain_ci=(0.003, 0.022),
...                     oracle_gain=0.12, n_users=10, unit="ROUGE", alpha=0.5, n_collapsed=5,
...                     alpha_null=0.6, alpha_p=0.99, beta=0.3, beta_null=0.28, beta_p=0.4,
...                     rel_mae=0.003, gain_error=0.2))  # doctest: +NORMALIZE_WHITESPACE
Best-of-16 with Prob RM gains +0.0120 [+0.0030, +0.0220] ROUGE over random (95% interval over
10 users), 10% of the oracle's gain (+0.120). 5 of 10 users (50%) have rho_u < 0.1, but this
collapse rate is not distinguishable from a reward model with no collapsed user (that null
gives 60%, p = 0.99). No sign of reward hacking beyond noise (30% of active
queries have rho_q < 0; noise alone gives 28%, p = 0.4). The law predicts the curve within
0.3% of its level and 20% of its gain (good).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._summary import Result

__all__ = ["CHANCE_ACCURACY", "GAIN_ERROR_GOOD", "GAIN_ERROR_POOR", "GAIN_WORDS", "LEVEL",
           "MIN_USERS", "Verdict", "eval_verdict", "frame_verdict", "model_findings",
           "model_verdict", "verdict_markdown", "zoo_verdict"]

#: Significance level of the null tests (collapse, hacking) and the paired gain test.
LEVEL = 0.05
#: Fewer users than this: no interval over users (the bootstrap cannot be honest).
MIN_USERS = 5
#: Gain error (sum|pred - obs| / sum|obs - random|) at or below which the law predicts the gain.
GAIN_ERROR_GOOD = 0.5
#: Gain error at or above which the law is no better than predicting no gain at all.
GAIN_ERROR_POOR = 1.0
#: Pairwise ranking accuracy of a coin flip (a reward model is *better than chance* only when
#: the interval of its held-out accuracy lies above this).
CHANCE_ACCURACY = 0.5
#: Short words for the gain findings (figure annotations).
GAIN_WORDS = {"gain": "real gain", "weak": "weak evidence", "none": "within noise",
              "loss": "worse than random", "too_few_users": "too few users",
              "unknown": "no interval"}


def _ok(v: Any) -> bool:
    return v is not None and np.isfinite(float(v))


def _num(*values: float):
    """A signed formatter with enough decimals for the largest of ``values`` (gains of 0.01
    need four, so that an interval bound of +0.0004 does not read +0.000)."""
    big = max((abs(float(v)) for v in values if _ok(v)), default=1.0)
    dec = 3 if big >= 0.1 else 4
    return lambda v: f"{float(v):+.{dec}f}"


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def model_findings(label: str, *, n: int | None = None, gain: float | None = None,
                   gain_ci: Sequence[float] | None = None, gain_p: float | None = None,
                   oracle_gain: float | None = None, n_users: int | None = None,
                   unit: str = "", level: float = 0.95, capture: float | None = None,
                   capture_ci: Sequence[float] | None = None,
                   alpha: float | None = None, n_collapsed: int | None = None,
                   alpha_null: float | None = None, alpha_p: float | None = None,
                   alpha_corrected: float | None = None, collapse_threshold: float = 0.1,
                   beta: float | None = None, beta_null: float | None = None,
                   beta_p: float | None = None, rel_mae: float | None = None,
                   gain_error: float | None = None) -> list[dict[str, str]]:
    """The findings about one reward model: ``aspect``, ``finding`` (a short code) and ``text``.

    Every argument but ``label`` is optional; an aspect whose numbers are missing is left
    out. Aspects and their findings: ``gain`` (``gain``, ``weak``, ``loss``, ``none``,
    ``too_few_users``, ``unknown``), ``collapse`` (``collapse``, ``weak_rm``, ``none``,
    ``untested``), ``hacking`` (``hacking``, ``noise``, ``unmeasurable``, ``untested``) and ``law``
    (``good``, ``fair``, ``poor``, ``uninformative``). See the module for the rules.

    Examples
    --------
    >>> f = model_findings("RM", n=8, gain=0.02, gain_ci=(0.01, 0.03), n_users=20)
    >>> [(x["aspect"], x["finding"]) for x in f]
    [('gain', 'gain')]
    """
    out: list[dict[str, str]] = []
    gain_real = False
    if _ok(gain):
        head = f"Best-of-{n} with {label}" if n else f"Best-of-N with {label}"
        u = f" {unit}" if unit else ""
        share = ""
        if _ok(oracle_gain) and oracle_gain > 0:
            share = f", {gain / oracle_gain:.0%} of the oracle's gain ({oracle_gain:+.3f})"
        elif _ok(capture) and not (capture_ci is not None and all(map(_ok, capture_ci))):
            share = f", capturing {capture:.0%} of the oracle's gain over N"
        lo, hi = (gain_ci if gain_ci is not None else (np.nan, np.nan))
        who = f" over {n_users} users" if n_users else ""
        pp = f", {_p(gain_p)}" if _ok(gain_p) else ""
        g = _num(gain, lo, hi)
        if n_users is not None and n_users < MIN_USERS:
            code = "too_few_users"
            text = (f"{head} gains {g(gain)}{u} over random{share} on only {n_users} "
                    f"user(s): too few for an interval (need {MIN_USERS}), so this describes "
                    f"these users and estimates nothing.")
        elif _ok(lo) and _ok(hi):
            iv = f"[{g(lo)}, {g(hi)}]"
            what = f"({level:.0%} interval{who}{pp})"
            if lo > 0 and not (_ok(gain_p) and gain_p >= LEVEL):
                code, gain_real = "gain", True
                text = f"{head} gains {g(gain)} {iv}{u} over random {what}{share}."
            elif lo > 0:
                code = "weak"
                text = (f"{head} gains {g(gain)} {iv}{u} over random {what}{share}: the "
                        f"interval excludes 0 but the paired test does not reject at "
                        f"{LEVEL:g}, weak evidence of a gain.")
            elif hi < 0:
                code = "loss"
                text = (f"{head} loses {g(gain)} {iv}{u} against random {what}: it selects "
                        f"worse than chance.")
            else:
                code = "none"
                text = (f"{head} gains {g(gain)} {iv}{u} over random {what}: not "
                        f"distinguishable from random selection{share}.")
        elif capture_ci is not None and all(map(_ok, capture_ci)) and _ok(capture):
            cap = (f"{head} gains {g(gain)}{u} over random, capturing {capture:.0%} "
                   f"[{capture_ci[0]:.0%}, {capture_ci[1]:.0%}] of the oracle's gain over N "
                   f"({level:.0%} interval{who})")
            if capture_ci[0] > 0:
                code, gain_real, text = "gain", True, cap + "."
            elif capture_ci[1] < 0:
                code, text = "loss", cap + ": it selects worse than chance."
            else:
                code, text = "none", cap + ": not distinguishable from random selection."
        else:
            code = "unknown"
            text = (f"{head} gains {g(gain)}{u} over random (no interval computed: pass "
                    f"ci=0.95){share}.")
        out.append({"aspect": "gain", "finding": code, "text": text})

    if _ok(alpha):
        thr = f"rho_u < {collapse_threshold:g}"
        if n_collapsed is not None and n_users:
            count = f"{n_collapsed} of {n_users} users ({alpha:.0%})"
        else:
            count = f"{alpha:.0%} of users"
        corr = (f"; noise-corrected rate {alpha_corrected:.0%}" if _ok(alpha_corrected)
                else "")
        if alpha == 0:
            code, text = "none", f"No user collapses (every user has rho_u >= " \
                                 f"{collapse_threshold:g})."
        elif not (_ok(alpha_p) and _ok(alpha_null)):
            code, text = "untested", f"{count} have {thr} (no null test run){corr}."
        elif alpha_p < LEVEL:
            code = "collapse"
            text = (f"{count} collapse ({thr}), more than a reward model with no collapsed "
                    f"user explains (that null gives {alpha_null:.0%}, {_p(alpha_p)}){corr}.")
        else:
            code = "weak_rm"
            text = (f"{count} have {thr}, but this collapse rate is not distinguishable from "
                    f"a reward model with no collapsed user (that null gives "
                    f"{alpha_null:.0%}, {_p(alpha_p)}).")
        out.append({"aspect": "collapse", "finding": code, "text": text})

    if beta is not None:
        if not _ok(beta):
            code, text = "unmeasurable", "Hacking is not measurable: every user collapsed."
        elif not (_ok(beta_p) and _ok(beta_null)):
            code = "untested"
            text = f"{beta:.0%} of active queries have rho_q < 0 (no null test run)."
        elif beta_p < LEVEL:
            code = "hacking"
            text = (f"Reward hacking beyond noise: {beta:.0%} of active queries rank against "
                    f"the reward, noise alone gives {beta_null:.0%} ({_p(beta_p)}).")
        else:
            code = "noise"
            text = (f"No sign of reward hacking beyond noise ({beta:.0%} of active queries "
                    f"have rho_q < 0; noise alone gives {beta_null:.0%}, {_p(beta_p)}).")
        out.append({"aspect": "hacking", "finding": code, "text": text})

    if _ok(rel_mae) and _ok(gain_error):
        lvl = f"within {rel_mae:.1%} of its level"
        if gain_error >= GAIN_ERROR_POOR:
            code = "poor"
            text = (f"The law predicts the curve {lvl} but misses {gain_error:.0%} of its "
                    f"gain: no better than predicting no gain.")
        else:
            code = "good" if gain_error <= GAIN_ERROR_GOOD else "fair"
            text = (f"The law predicts the curve {lvl} and {gain_error:.0%} of its gain "
                    f"({code}).")
        if not gain_real and out and out[0]["aspect"] == "gain":
            code = "uninformative"
            text = (text[:-1] + "; the gain itself is not established beyond noise, so this "
                                "says little.")
        out.append({"aspect": "law", "finding": code, "text": text})
    elif _ok(rel_mae):
        out.append({"aspect": "law", "finding": "uninformative",
                    "text": f"The law predicts the curve within {rel_mae:.1%} of its level "
                            f"(no gain over random to measure its error against)."})
    return out


def model_verdict(label: str, **numbers: Any) -> str:
    """The verdict sentences of one reward model from plain numbers (see
    :func:`model_findings` for the arguments).

    Examples
    --------
    >>> print(model_verdict("RM", n=8, gain=-0.02, gain_ci=(-0.03, -0.01), n_users=20))
    ... # doctest: +NORMALIZE_WHITESPACE
    Best-of-8 with RM loses -0.0200 [-0.0300, -0.0100] against random (95% interval over 20
    users): it selects worse than chance.
    """
    return " ".join(f["text"] for f in model_findings(label, **numbers))


class Verdict(Result):
    """The verdict of an analysis: a headline and a few sentences per reward model.

    Parameters
    ----------
    findings : pandas.DataFrame
        One row per (score, aspect): ``score``, ``rm`` (label), ``aspect``, ``finding``,
        ``text`` (as :func:`model_findings` returns them).
    headline : str
        One sentence on the data and the settings the verdict rests on.

    Attributes
    ----------
    summary : pandas.DataFrame
        The findings (tidy; one row per score and aspect).

    Examples
    --------
    >>> rows = [dict(score="s", rm="S", **f) for f in model_findings(
    ...     "S", n=4, gain=0.1, gain_ci=(0.05, 0.15), n_users=9)]
    >>> v = Verdict(pd.DataFrame(rows), "9 users.")
    >>> v.finding("s", "gain")
    'gain'
    >>> print(v)
    Verdict: 9 users.
    - S: Best-of-4 with S gains +0.100 [+0.050, +0.150] over random (95% interval over 9 users).
    """

    def __init__(self, findings: pd.DataFrame, headline: str = "") -> None:
        self.findings = findings.reset_index(drop=True)
        self.headline = headline

    def _summary_frame(self) -> pd.DataFrame:
        return self.findings

    def sentences(self, score: str) -> str:
        """All sentences about one score column, as one paragraph."""
        f = self.findings
        return " ".join(f.loc[f["score"] == score, "text"])

    def finding(self, score: str, aspect: str) -> str | None:
        """The finding code of one score column and aspect (None when not assessed)."""
        f = self.findings
        hit = f.loc[(f["score"] == score) & (f["aspect"] == aspect), "finding"]
        return None if hit.empty else str(hit.iloc[0])

    def by_model(self) -> dict[str, str]:
        """Reward-model label -> its paragraph, in the order of the findings."""
        f = self.findings
        return {str(f.loc[f["score"] == s, "rm"].iloc[0]): self.sentences(s)
                for s in dict.fromkeys(f["score"])}

    def _text(self) -> str:
        lines = [f"Verdict: {self.headline}".rstrip()]
        lines += [f"- {rm}: {para}" for rm, para in self.by_model().items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        items = "".join(f"<li><b>{html.escape(rm)}</b>: {html.escape(p)}</li>"
                        for rm, p in self.by_model().items())
        return (f"<div class='ttp-verdict'><p><b>Verdict.</b> {html.escape(self.headline)}"
                f"</p><ul>{items}</ul></div>")


def _rows(score: str, label: str, findings: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"score": score, "rm": label, **f} for f in findings]


def diagnostics_numbers(d: Any) -> dict[str, Any]:
    """The numbers :func:`model_findings` needs, from one :class:`ttp_diag.Diagnostics`
    (gain and law from its own curve at the largest N; capture with its interval)."""
    from .metrics import gain_error, rel_mae

    c = d.curve
    out: dict[str, Any] = {
        "n_users": int(d.n_users), "alpha": float(d.alpha), "n_collapsed": d.n_collapsed,
        "alpha_null": d.null.get("alpha_null"), "alpha_p": d.null.get("alpha_p"),
        "alpha_corrected": float(d.alpha_corrected),
        "collapse_threshold": float(d.collapse_threshold),
        "beta": float(d.beta) if d.n_collapsed < d.n_users else float("nan"),
        "beta_null": d.null.get("beta_null"), "beta_p": d.null.get("beta_p"),
        "capture": float(d.capture), "capture_ci": d.intervals.get("capture"),
        "level": d.ci or 0.95}
    if c is not None and len(c):
        last = c.iloc[-1]
        out["n"] = int(last["n"])
        out["gain"] = float(last["observed"] - last["random"])
        obs, pred, rnd = (c[k].to_numpy(dtype=float) for k in ("observed", "predicted", "random"))
        with contextlib.suppress(ValueError):
            out["rel_mae"] = rel_mae(pred, obs)
        with contextlib.suppress(ValueError):
            out["gain_error"] = gain_error(pred, obs, rnd)
    return out


def diagnostics_verdict(d: Any, *, label: str | None = None, unit: str = "") -> Verdict:
    """The :class:`Verdict` of one :class:`ttp_diag.Diagnostics` (see its ``verdict``)."""
    from .names import selector_label

    label = label or selector_label(d.score)
    nums = diagnostics_numbers(d)
    rows = _rows(d.score, label, model_findings(label, unit=unit, **nums))
    head = (f"{d.n_users} users, {d.n_queries} queries"
            + (f"; {d.ci:.0%} intervals from a two-level bootstrap over users"
               if d.ci else "; no intervals (ci=None)") + ".")
    return Verdict(pd.DataFrame(rows), head)


def frame_verdict(frame: pd.DataFrame, *, label: str,
                  columns: dict[str, str | tuple[str, str]], headline: str = "",
                  **fixed: Any) -> Verdict:
    """The :class:`Verdict` of a results table with one row per reward model (the evaluation
    and zoo tables, a CSV of them).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per reward model.
    label : str
        Column with the model's name.
    columns : dict
        :func:`model_findings` argument -> column (a pair of columns for ``gain_ci`` and
        ``capture_ci``), e.g. ``{"gain": "bon_gain_N16", "gain_ci": ("gain_lo", "gain_hi"),
        "alpha": "alpha", "alpha_p": "alpha_p"}``.
    headline : str
        What the table is (shown first).
    **fixed
        Arguments that are the same for every row (``n=16``, ``n_users=10``, ``unit=...``).

    Examples
    --------
    >>> f = pd.DataFrame({"model": ["a", "b"], "g": [0.02, -0.001], "lo": [0.01, -0.01],
    ...                   "hi": [0.03, 0.008]})
    >>> v = frame_verdict(f, label="model", columns={"gain": "g", "gain_ci": ("lo", "hi")},
    ...                   n=8, n_users=20)
    >>> v.finding("a", "gain"), v.finding("b", "gain")
    ('gain', 'none')
    """
    rows = []
    for rec in frame.to_dict("records"):
        nums: dict[str, Any] = dict(fixed)
        for arg, col in columns.items():
            nums[arg] = (tuple(rec[c] for c in col) if isinstance(col, tuple) else rec[col])
        name = str(rec[label])
        rows += _rows(name, name, model_findings(name, **nums))
    return Verdict(pd.DataFrame(rows, columns=["score", "rm", "aspect", "finding", "text"]),
                   headline)


def result_html(verdict: Verdict, table: pd.DataFrame, png: bytes | None = None) -> str:
    """Rich display of a result in Jupyter: the verdict, the key table, a small figure."""
    import base64

    img = ""
    if png is not None:
        b64 = base64.b64encode(png).decode("ascii")
        img = f"<img style='max-width:520px' src='data:image/png;base64,{b64}'>"
    tab = table.to_html(index=False, border=0, na_rep="", float_format=lambda x: f"{x:.3g}")
    return (f"<div class='ttp-result'>{verdict._repr_html_()}"
            f"<div style='overflow-x:auto'>{tab}</div>{img}</div>")


def _interval_code(lo: Any, hi: Any, ref: float) -> str:
    """``above`` / ``below`` / ``spans`` (the interval against ``ref``), ``unknown`` if absent."""
    if not (_ok(lo) and _ok(hi)):
        return "unknown"
    return "above" if lo > ref else ("below" if hi < ref else "spans")


def accuracy_finding(label: str, acc: float, lo: Any = None, hi: Any = None, *,
                     n_pairs: Any = None, level: float = 0.95) -> dict[str, str]:
    """The ``accuracy`` finding of one reward model: held-out pairwise accuracy against chance
    (:data:`CHANCE_ACCURACY`); ``better``, ``worse``, ``chance`` or ``unknown`` (no interval).

    Examples
    --------
    >>> accuracy_finding("RM", 0.62, 0.55, 0.69, n_pairs=200)["finding"]
    'better'
    """
    on = f" on {int(n_pairs)} held-out pairs" if _ok(n_pairs) else ""
    code = {"above": "better", "below": "worse", "spans": "chance", "unknown": "unknown"}[
        _interval_code(lo, hi, CHANCE_ACCURACY)]
    if code == "unknown":
        text = f"{label} ranks {acc:.1%} of pairs right{on} (no interval computed)."
    else:
        iv = f"{acc:.1%} [{lo:.1%}, {hi:.1%}] of pairs right{on} ({level:.0%} interval)"
        text = {"better": f"{label} ranks {iv}: better than chance ({CHANCE_ACCURACY:.0%}).",
                "worse": f"{label} ranks {iv}: worse than chance ({CHANCE_ACCURACY:.0%}).",
                "chance": f"{label} ranks {iv}: not distinguishable from chance "
                          f"({CHANCE_ACCURACY:.0%})."}[code]
    return {"aspect": "accuracy", "finding": code, "text": text}


_ZOO_COLUMNS = {"gain": "bon_gain_N16", "gain_ci": ("gain_lo", "gain_hi"), "alpha": "alpha",
                "alpha_null": "alpha_null", "alpha_p": "alpha_p", "beta": "beta",
                "beta_null": "beta_null", "beta_p": "beta_p", "n_users": "n_users"}


def zoo_verdict(results: pd.DataFrame, *, n: int = 16, level: float = 0.95) -> Verdict:
    """The :class:`Verdict` of the reward-model zoo (``zoo_results.csv`` of ``ttp-diag zoo``):
    per model, held-out accuracy against chance, the Best-of-``n`` gain over random and
    collapse and hacking with their null tests, each only where its columns exist.

    Examples
    --------
    >>> r = pd.DataFrame([dict(model="m", acc_heldout=0.5, acc_lo=0.4, acc_hi=0.6, n_pairs=50,
    ...                        bon_gain_N16=0.02, gain_lo=0.01, gain_hi=0.03, n_users=8)])
    >>> v = zoo_verdict(r)
    >>> v.finding("m", "accuracy"), v.finding("m", "gain")
    ('chance', 'gain')
    """
    rows: list[dict[str, str]] = []
    for rec in results.to_dict("records"):
        name = str(rec["model"])
        nums: dict[str, Any] = {"n": n, "level": level}
        for arg, col in _ZOO_COLUMNS.items():
            cols = col if isinstance(col, tuple) else (col,)
            if all(c in rec for c in cols):
                nums[arg] = tuple(rec[c] for c in cols) if isinstance(col, tuple) else rec[col]
        if _ok(nums.get("n_users")):
            nums["n_users"] = int(nums["n_users"])
            if _ok(nums.get("alpha")):
                nums["n_collapsed"] = int(round(nums["alpha"] * nums["n_users"]))
        else:
            nums.pop("n_users", None)
        found = []
        if "acc_heldout" in rec:
            found.append(accuracy_finding(name, rec["acc_heldout"], rec.get("acc_lo"),
                                          rec.get("acc_hi"), n_pairs=rec.get("n_pairs"),
                                          level=level))
        rows += _rows(name, name, found + model_findings(name, **nums))
    users = results["n_users"].max() if "n_users" in results else None
    head = (f"{len(results)} reward model(s) of the zoo"
            + (f" on up to {int(users)} users" if _ok(users) else "")
            + f"; {level:.0%} intervals (accuracy: bootstrap over queries; gain: over users).")
    return Verdict(pd.DataFrame(rows, columns=["score", "rm", "aspect", "finding", "text"]),
                   head)


def eval_verdict(summary: pd.DataFrame, rho: pd.DataFrame | None = None, *,
                 baseline: str = "zero_shot", metrics: Sequence[str] = ("rouge1", "reward"),
                 statistic: str = "spearman_rho", level: float | None = None) -> Verdict:
    """The :class:`Verdict` of ``ttp-diag evaluate``.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``method, metric, mean, ci_low, ci_high, n_users`` (``tables/summary_long.csv``, the
        numbers of the generation_quality table). A paired difference against ``baseline``
        is read from optional columns ``diff, diff_low, diff_high``
        (metric ``<metric>_vs_<baseline>`` is not needed); without them each method's mean
        and interval are given beside the baseline's and the verdict says the paired
        difference is missing, so no win over ``baseline`` is claimed.
    rho : pandas.DataFrame, optional
        ``tables/rho_eff_vs_accuracy.csv``: ``family, quality, statistic, rho_eff,
        rm_accuracy, difference, ci_low, ci_high, n_points, n_users``; rows of ``statistic``.
    baseline, metrics, statistic
        What each method is compared with, on which metrics, and which correlation.
    level : float, optional
        Level of the intervals, for the wording; default: the table's ``ci_level`` column,
        else 0.95.

    Examples
    --------
    >>> s = pd.DataFrame({"method": ["zero_shot", "icl"], "metric": "rouge1",
    ...     "mean": [0.2, 0.3], "ci_low": [0.18, 0.27], "ci_high": [0.22, 0.33],
    ...     "diff": [0.0, 0.1], "diff_low": [0.0, 0.07], "diff_high": [0.0, 0.13],
    ...     "n_users": 9})
    >>> eval_verdict(s).finding("icl", "rouge1")
    'better'
    """
    if level is None:  # the level the table's intervals were computed at
        lv = summary["ci_level"].dropna() if "ci_level" in summary else pd.Series(dtype=float)
        level = float(lv.iloc[0]) if len(lv) else 0.95
    rows: list[dict[str, str]] = []
    s = summary[summary["metric"].isin(metrics)]
    paired = {"diff", "diff_low", "diff_high"} <= set(s.columns)
    base = s[s["method"] == baseline].set_index("metric")
    for m in [x for x in dict.fromkeys(s["method"]) if x != baseline]:
        for rec in s[s["method"] == m].to_dict("records"):
            k = rec["metric"]
            users = f", {int(rec['n_users'])} users" if _ok(rec.get("n_users")) else ""
            mine = f"{rec['mean']:.3f}" + (f" [{rec['ci_low']:.3f}, {rec['ci_high']:.3f}]"
                                          if _ok(rec["ci_low"]) else "")
            if k not in base.index:
                code, text = "missing", (f"{k} {mine}{users}; the table has no {baseline} "
                                         f"row to compare with.")
            elif paired and _ok(rec["diff_low"]) and _ok(rec["diff_high"]):
                code = {"above": "better", "below": "worse", "spans": "same"}[
                    _interval_code(rec["diff_low"], rec["diff_high"], 0.0)]
                g = _num(rec["diff"], rec["diff_low"], rec["diff_high"])
                word = {"better": f"beats {baseline}", "worse": f"is worse than {baseline}",
                        "same": f"is not distinguishable from {baseline}"}[code]
                text = (f"{word[0].upper() + word[1:]} on {k}: {g(rec['diff'])} "
                        f"[{g(rec['diff_low'])}, {g(rec['diff_high'])}] ({level:.0%} interval "
                        f"of the paired difference{users}).")
            else:
                b = base.loc[k]
                bs = f"{b['mean']:.3f}" + (f" [{b['ci_low']:.3f}, {b['ci_high']:.3f}]"
                                           if _ok(b["ci_low"]) else "")
                code = "untested"
                text = f"{k} {mine} against {baseline} {bs}{users} (not tested)."
            rows.append({"score": m, "rm": m, "aspect": k, "finding": code, "text": text})
    if rho is not None and len(rho):
        for rec in rho[rho["statistic"] == statistic].to_dict("records"):
            key = f"rho_eff vs accuracy ({rec['family']}, {rec['quality']})"
            code = {"above": "rho_eff", "below": "accuracy", "spans": "undecided",
                    "unknown": "unknown"}[_interval_code(rec["ci_low"], rec["ci_high"], 0.0)]
            on = (f"{int(rec['n_points'])} reward models, {int(rec['n_users'])} users, "
                  f"{statistic}")
            if not (_ok(rec["rho_eff"]) and _ok(rec["rm_accuracy"])):
                rows.append({"score": key, "rm": key, "aspect": "rho_eff",
                             "finding": "unknown",
                             "text": f"Not computable ({on}): too few reward models or users, "
                                     f"or a constant predictor."})
                continue
            d = f"{rec['difference']:+.2f} [{rec['ci_low']:+.2f}, {rec['ci_high']:+.2f}]" \
                if code != "unknown" else f"{rec['difference']:+.2f} (no interval)"
            say = {"rho_eff": "rho_eff predicts quality better than ranking accuracy",
                   "accuracy": "ranking accuracy predicts quality better than rho_eff",
                   "undecided": "this sample cannot tell which predicts quality better",
                   "unknown": "no interval, so nothing is decided"}[code]
            text = (f"corr(rho_eff, {rec['quality']}) {rec['rho_eff']:+.2f} vs "
                    f"corr(accuracy, {rec['quality']}) {rec['rm_accuracy']:+.2f}; difference "
                    f"{d} ({level:.0%} interval; {on}): {say}.")
            rows.append({"score": key, "rm": key, "aspect": "rho_eff", "finding": code,
                         "text": text})
    else:
        rows.append({"score": "rho_eff vs accuracy", "rm": "rho_eff vs accuracy",
                     "aspect": "rho_eff", "finding": "missing",
                     "text": "No rho_eff_vs_accuracy table (it needs Best-of-N methods with "
                             "rho_eff and RM accuracy, and intervals: ci set)."})
    n_u = summary["n_users"].max() if "n_users" in summary and len(summary) else None
    tally = []
    if paired:  # the answer first: how many methods beat the baseline on each metric
        f = pd.DataFrame(rows, columns=["score", "rm", "aspect", "finding", "text"])
        for k in metrics:
            g = f[(f["aspect"] == k) & f["finding"].isin(["better", "worse", "same"])]
            if len(g):
                better = g.loc[g["finding"] == "better", "score"].tolist()
                n_w = int((g["finding"] == "worse").sum())
                tally.append(f"on {k}, {len(better)} of {len(g)} beat {baseline} beyond noise"
                             + (f" ({', '.join(better[:4])}{', ...' if len(better) > 4 else ''})"
                                if better else "") + f", {n_w} are worse")
    head = (f"{summary['method'].nunique()} method(s) against {baseline}"
            + (f" on up to {int(n_u)} adaptation users" if _ok(n_u) else "")
            + (f" ({level:.0%} intervals of the paired difference): " + "; ".join(tally)
               if tally else "") + "."
            + ("" if paired else f" The table has no paired difference against {baseline} "
               f"(per-user difference with its interval), so no method is said to beat "
               f"{baseline}: means [intervals over users] are shown side by side."))
    return Verdict(pd.DataFrame(rows, columns=["score", "rm", "aspect", "finding", "text"]),
                   head)


def verdict_markdown(verdict: Verdict, title: str = "Verdict") -> str:
    """The verdict as a Markdown page (``verdict.md`` of the zoo and the evaluation)."""
    lines = [f"# {title}", "", verdict.headline, ""]
    lines += [f"- **{rm}**: {p}" for rm, p in verdict.by_model().items()]
    return "\n".join(lines) + "\n"
