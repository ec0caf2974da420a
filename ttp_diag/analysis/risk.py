"""A-priori risk of collapse and hacking from labels alone (paper appendix C.3, Tables A13/A14).

Before any reward model is trained, the training labels already say where it is likely to
fail:

* **users** whose ground-truth rewards barely vary (low label std) give an MSE-trained model
  almost no signal and tend to *collapse* (rho_u < 0.1);
* **queries** whose candidates barely differ in quality (low candidate-quality spread) tend to
  be *hacked* (rho_q < 0).

:func:`label_risk` computes both statistics from one split (default ``"train"``) and splits
users and queries into low/high halves. :func:`risk_report` adds, for a scored table, the
realised collapse and hacking rates of each half (Tables A13 and A14) and writes CSV,
markdown and HTML.

Examples
--------
>>> from ttp_diag import simulate_score_table
>>> t = simulate_score_table(n_users=20, n_queries=6, n_candidates=10, seed=0)
>>> rep = risk_report(t, scores=["score_det", "score_prob"])
>>> list(rep.collapse_table.columns[:3])
['score', 'n_low', 'n_high']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ttp_diag._summary import Result
from ttp_diag.table import score_columns, validate_score_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.diagnostics import Diagnostics
    from ttp_diag.report import Report

__all__ = ["LabelRisk", "RiskReport", "label_risk", "risk_report"]


def _halves(values: pd.Series, ids: pd.Series) -> np.ndarray:
    """``"low"``/``"high"`` halves by rank; ties broken by id so the halves are balanced.

    With an odd count the middle element goes to ``"high"``.
    """
    frame = pd.DataFrame({"v": values.to_numpy(), "id": ids.astype(str).to_numpy()})
    order = frame.sort_values(["v", "id"], kind="mergesort").index.to_numpy()
    half = np.empty(len(frame), dtype=object)
    half[order] = np.where(np.arange(len(frame)) < len(frame) // 2, "low", "high")
    return half


@dataclass
class LabelRisk(Result):
    """Label statistics and risk halves (see :func:`label_risk`).

    Attributes
    ----------
    users : pandas.DataFrame
        ``user_id, n_queries, n_candidates, label_mean, label_std, half, collapse_risk,
        low_spread_share, hacking_risk``. ``label_std`` is the std (ddof=1) of all the user's
        candidate rewards; ``half`` is ``"low"``/``"high"`` by rank; ``collapse_risk`` is
        ``"high"`` for the low half. ``low_spread_share`` is the share of the user's queries in
        the low-spread half; ``hacking_risk`` is ``"high"`` when it exceeds one half.
    queries : pandas.DataFrame
        ``user_id, query_id, n_candidates, spread, half, hacking_risk``; ``spread`` is the
        std (ddof=1) of the query's candidate rewards.
    split : str or None
        The split the labels came from.
    user_std_threshold, query_spread_threshold : float
        Largest value in the low half (the boundary used).
    """

    users: pd.DataFrame
    queries: pd.DataFrame
    split: str | None
    user_std_threshold: float
    query_spread_threshold: float

    def _summary_frame(self) -> pd.DataFrame:
        """One row per (level, half): how many users / queries, and the boundary."""
        rows = []
        for level, frame, col, thr in (("user", self.users, "label_std", self.user_std_threshold),
                                       ("query", self.queries, "spread",
                                        self.query_spread_threshold)):
            for half in ("low", "high"):
                part = frame.loc[frame["half"] == half, col]
                rows.append({"level": level, "half": half, "n": int(len(part)),
                             "median": float(part.median()) if len(part) else float("nan"),
                             "threshold": thr})
        return pd.DataFrame(rows)

    def _text(self) -> str:
        return (f"label risk from {self.split or 'all'} labels: {len(self.users)} users (low "
                f"half: label std <= {self.user_std_threshold:.4g}), {len(self.queries)} queries "
                f"(low half: candidate spread <= {self.query_spread_threshold:.4g})")


def label_risk(table: pd.DataFrame, *, split: str | None = "train") -> LabelRisk:
    """Per-user label std and per-query candidate-quality spread with low/high halves.

    Uses only ``user_id``, ``query_id``, ``cand_id`` and ``reward``: no reward model is needed.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table (score columns, if any, are ignored).
    split : str or None, default "train"
        Split whose labels are used (``None``: every row).

    Returns
    -------
    LabelRisk

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 4, "query_id": list("ppqqrrss"),
    ...                   "cand_id": [0, 1] * 4, "reward": [0, 0.1, 0, 0.1, 0, 0.9, 0.2, 0.8]})
    >>> label_risk(t, split=None).users[["user_id", "collapse_risk"]].values.tolist()
    [['a', 'high'], ['b', 'low']]
    """
    t = validate_score_table(table, scores=[], split=split)
    r = t["reward"].astype(float)
    q = (
        t.assign(reward=r)
        .groupby(["user_id", "query_id"], sort=True)["reward"]
        .agg(n_candidates="size", spread=lambda v: float(v.std(ddof=1)))
        .reset_index()
    )
    q["half"] = _halves(q["spread"], q["query_id"])
    q["hacking_risk"] = np.where(q["half"] == "low", "high", "low")
    u = (
        t.assign(reward=r)
        .groupby("user_id", sort=True)
        .agg(
            n_queries=("query_id", "nunique"),
            n_candidates=("reward", "size"),
            label_mean=("reward", "mean"),
            label_std=("reward", lambda v: float(v.std(ddof=1))),
        )
        .reset_index()
    )
    u["half"] = _halves(u["label_std"], u["user_id"])
    u["collapse_risk"] = np.where(u["half"] == "low", "high", "low")
    share = q.assign(low=q["half"] == "low").groupby("user_id")["low"].mean()
    u["low_spread_share"] = u["user_id"].map(share).astype(float)
    u["hacking_risk"] = np.where(u["low_spread_share"] > 0.5, "high", "low")
    u_low = u.loc[u["half"] == "low", "label_std"]
    q_low = q.loc[q["half"] == "low", "spread"]
    return LabelRisk(
        users=u,
        queries=q,
        split=split,
        user_std_threshold=float(u_low.max()) if len(u_low) else float("nan"),
        query_spread_threshold=float(q_low.max()) if len(q_low) else float("nan"),
    )


def _rate_row(flag: pd.Series, half: pd.Series) -> dict:
    low, high = flag[half == "low"], flag[half == "high"]
    row = {
        "n_low": int(low.size),
        "n_high": int(high.size),
        "rate_low": float(low.mean()) if low.size else float("nan"),
        "rate_high": float(high.mean()) if high.size else float("nan"),
        "rate_all": float(flag.mean()) if flag.size else float("nan"),
    }
    row["ratio_low_high"] = (row["rate_low"] / row["rate_high"]
                             if row["rate_high"] > 0 else float("nan"))
    if low.size and high.size:
        table = [[int(low.sum()), int(low.size - low.sum())],
                 [int(high.sum()), int(high.size - high.sum())]]
        row["fisher_p"] = float(stats.fisher_exact(table).pvalue)
    else:
        row["fisher_p"] = float("nan")
    return row


@dataclass
class RiskReport(Result):
    """A-priori risk and realised failure rates (see :func:`risk_report`).

    Attributes
    ----------
    prior : LabelRisk
        Label statistics of ``label_split`` (the a-priori part).
    users : pandas.DataFrame
        Eval-split users with their a-priori ``half`` and, per score, ``rho_u__<score>`` and
        ``collapsed__<score>``.
    queries : pandas.DataFrame
        Eval-split queries with ``spread``, ``half`` and, per score, ``rho_q__<score>`` and
        ``hacked__<score>`` (``rho_q < 0``; NaN where the correlation is undefined).
    collapse_table : pandas.DataFrame
        Table A13: per score ``n_low, n_high, rate_low, rate_high, rate_all, ratio_low_high,
        fisher_p`` (rate = share of users with rho_u < ``collapse_threshold``).
    hacking_table : pandas.DataFrame
        Table A14: the same for queries (rate = share of queries with a defined rho_q that is
        negative), plus ``n_undefined``.
    label_split, eval_split : str or None
    notes : list of str
    """

    prior: LabelRisk
    users: pd.DataFrame
    queries: pd.DataFrame
    collapse_table: pd.DataFrame
    hacking_table: pd.DataFrame
    label_split: str | None
    eval_split: str | None
    collapse_threshold: float
    notes: list = field(default_factory=list)

    # ------------------------------------------------------------------ results
    def _summary_frame(self) -> pd.DataFrame:
        """Tables A13 and A14 stacked: ``what`` is ``"collapse"`` (users) or ``"hacking"``
        (queries)."""
        return pd.concat([self.collapse_table.assign(what="collapse"),
                          self.hacking_table.assign(what="hacking")], ignore_index=True)

    def plot(self, ax: Axes | None = None, *,
             kind: Literal["collapse", "hacking"] = "collapse") -> Axes:
        """Collapse (users) or hacking (queries) rate of each half per score column."""
        from ttp_diag.plots.risk import plot_risk

        return plot_risk(self, ax, kind=kind)

    def _text(self) -> str:
        p = self.prior
        lines = [
            f"A-priori risk from {p.split or 'all'} labels: {len(p.users)} users, "
            f"{len(p.queries)} queries.",
            f"  users with label std <= {p.user_std_threshold:.4f} (low half, "
            f"{int((p.users.half == 'low').sum())} users) are at high collapse risk;",
            f"  queries with candidate spread <= {p.query_spread_threshold:.4f} (low half) are at "
            f"high hacking risk.",
        ]
        for what, tab, unit in (("collapse", self.collapse_table, "users"),
                                ("hacking", self.hacking_table, "queries with a defined rho_q")):
            for r in tab.itertuples():
                if not (np.isfinite(r.rate_low) and np.isfinite(r.rate_high)):
                    lines.append(f"  {r.score}: {what} by half n/a (no {unit} in "
                                 f"{'a half' if r.n_low + r.n_high else 'either half'}: "
                                 f"n_low={r.n_low}, n_high={r.n_high})")
                    continue
                lines.append(f"  {r.score}: {what} low/high half {r.rate_low:.0%}/"
                             f"{r.rate_high:.0%} (Fisher p={_fmt_p(r.fisher_p)}, "
                             f"n={r.n_low}/{r.n_high})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _tables(self) -> list[tuple[str, str, pd.DataFrame]]:
        users = self.prior.users.sort_values("label_std").reset_index(drop=True)
        return [
            ("Table A13: user-level collapse rate by label-std half",
             f"Share of users with rho_u < {self.collapse_threshold:g} in the "
             f"{self.eval_split or 'all'} "
             f"split; halves by per-user label std of the {self.label_split or 'all'} split.",
             self.collapse_table),
            ("Table A14: query-level hacking rate by candidate-spread half",
             "Share of queries with rho_q < 0 among queries with a defined correlation; halves by "
             "the std of each query's candidate rewards (labels only).",
             self.hacking_table),
            ("Per-user a-priori risk",
             "label_std: std of the user's candidate rewards; collapse_risk high = low half; "
             "low_spread_share: share of the user's queries in the low-spread half.",
             users),
        ]

    def _report(self, images: list[tuple[str, bytes]] | None = None) -> Report:
        """The report on the package's one template (:class:`ttp_diag.report.Report`)."""
        from ttp_diag.report import Report

        rep = Report("Risk report")
        rep.pre(self._text())
        for i, (caption, png) in enumerate(images or []):
            rep.figure(png, "risk_by_half" if i == 0 else f"risk_figure_{i + 1}", caption)
        for (title, caption, df), name in zip(self._tables(), _TABLE_NAMES, strict=True):
            rep.heading(title)
            rep.table(df, name, caption, max_rows=None)
        return rep

    def to_markdown(self) -> str:
        """The report as GitHub-flavoured markdown (user text escaped)."""
        return self._report().to_markdown()

    def to_html(self, images: list[tuple[str, bytes]] | None = None) -> str:
        """The report as one self-contained HTML page (no external resources).

        Parameters
        ----------
        images : list of (caption, png_bytes), optional
            Figures to embed (base64) after the summary.
        """
        return self._report(images).to_html()

    def save(self, out_dir: str | Path,
             images: list[tuple[str, bytes]] | None = None) -> dict[str, str]:
        """Write CSVs, ``risk_report.md`` and ``risk_report.html`` into ``out_dir`` (atomic).

        ``images`` (list of (caption, png_bytes)) are embedded in the HTML page.

        Returns
        -------
        dict
            name -> path of every file written.
        """
        from ttp_diag.io import atomic_write

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = self._report(images).write(out, html_name="risk_report.html",
                                             md_name="risk_report.md")
        for name, df in (("risk_queries.csv", self.prior.queries),
                         ("risk_eval_users.csv", self.users),
                         ("risk_eval_queries.csv", self.queries)):
            written[name] = str(atomic_write(out / name,
                                             lambda p, df=df: df.to_csv(p, index=False)))
        return written


# CSV names of the tables of RiskReport._tables(), in order
_TABLE_NAMES = ("table_a13_collapse_by_half", "table_a14_hacking_by_half", "risk_users")


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if np.isfinite(p) else "n/a"


def risk_report(
    table: pd.DataFrame,
    scores: list[str] | None = None,
    *,
    label_split: str | None = "train",
    eval_split: str | None = "val",
    collapse_threshold: float = 0.1,
    diagnostics: dict[str, Diagnostics] | None = None,
) -> RiskReport:
    """A-priori risk from labels and, for each score, realised rates by half (Tables A13/A14).

    User halves come from the per-user label std of ``label_split`` (the training labels: a
    genuinely a-priori split). When the table has no rows of that split the eval split's labels
    are used instead and a note says so. Query halves come from the candidate-reward spread of
    the eval split's own queries (they are different queries from the training ones; the spread
    uses labels only, no reward model).

    Parameters
    ----------
    table : pandas.DataFrame
        Score table.
    scores : list of str, optional
        Score columns to evaluate (default: every ``score_*`` column; ``[]`` for the
        a-priori part only).
    label_split : str or None, default "train"
    eval_split : str or None, default "val"
    collapse_threshold : float, default 0.1
    diagnostics : dict, optional
        score -> precomputed :func:`ttp_diag.diagnose` result on ``eval_split``.

    Returns
    -------
    RiskReport

    Raises
    ------
    ValueError
        When no query of ``eval_split`` has two different rewards ("no reward signal"): the
        rates of hacking would all be 0/0.
    """
    from ttp_diag.diagnostics import diagnose

    notes = []
    scores = list(score_columns(table) if scores is None else scores)
    has_label_split = (
        label_split is None
        or ("split" in table.columns and bool((table["split"] == label_split).any()))
    )
    if not has_label_split:
        notes.append(
            f"no rows with split == {label_split!r}: user halves use the {eval_split!r} labels "
            f"(still label-only, but not from a separate training split)."
        )
        label_split = eval_split
    prior = label_risk(table, split=label_split)
    evalt = validate_score_table(table, scores=scores, split=eval_split)
    from ttp_diag.bestofn import check_reward_signal

    check_reward_signal(evalt, split=eval_split)
    ev = label_risk(evalt, split=None)

    users = ev.users[["user_id", "label_std"]].rename(columns={"label_std": "eval_label_std"})
    users = users.merge(
        prior.users[["user_id", "label_std", "half", "collapse_risk"]], on="user_id", how="left"
    )
    n_missing = int(users["half"].isna().sum())
    if n_missing:
        notes.append(f"{n_missing} eval user(s) have no {label_split!r} labels; they are left "
                     f"out of the halves (half = NaN).")
    queries = ev.queries[["user_id", "query_id", "n_candidates", "spread", "half"]].copy()

    c_rows, h_rows = [], []
    for score in scores:
        d = (diagnostics or {}).get(score) or diagnose(
            evalt, score, collapse_threshold=collapse_threshold, split=None, validate=False)
        pu = d.per_user.set_index("user_id")
        users[f"rho_u__{score}"] = users["user_id"].map(pu["rho_u"])
        users[f"collapsed__{score}"] = users["user_id"].map(pu["collapsed"]).astype(bool)
        pq = d.per_query.set_index("query_id")
        rho_q = queries["query_id"].map(pq["rho_q"]).astype(float)
        undefined = queries["query_id"].map(pq["undefined"]).astype(bool)
        queries[f"rho_q__{score}"] = rho_q.where(~undefined)
        queries[f"hacked__{score}"] = (rho_q < 0).where(~undefined)
        ok = users["half"].notna()
        c_rows.append({"score": score, **_rate_row(
            users.loc[ok, f"collapsed__{score}"].astype(float), users.loc[ok, "half"])})
        okq = ~undefined
        row = _rate_row(queries.loc[okq, f"hacked__{score}"].astype(float),
                        queries.loc[okq, "half"])
        row["n_undefined"] = int(undefined.sum())
        h_rows.append({"score": score, **row})
    cols = ["score", "n_low", "n_high", "rate_low", "rate_high", "rate_all", "ratio_low_high",
            "fisher_p"]
    return RiskReport(
        prior=prior,
        users=users,
        queries=queries,
        collapse_table=pd.DataFrame(c_rows, columns=cols),
        hacking_table=pd.DataFrame(h_rows, columns=cols + ["n_undefined"]),
        label_split=label_split,
        eval_split=eval_split,
        collapse_threshold=float(collapse_threshold),
        notes=notes,
    )
