"""Metrics of the evaluation suite (second paper, Definitions 1-3, plus rank agreement).

* :func:`pairwise_accuracy` - Definition 1 (reward-model ranking accuracy) and Definition 2
  (policy accuracy) are the same statistic on different scores: the share of pairs whose
  chosen side scores higher than the rejected side, per user and overall.
* :func:`score_base`, :func:`score_rgd` - the scoring functions of section 4, kept as the
  paper writes them: the base policy's length-normalised log-likelihood (eq. 4, a *mean*
  over tokens; ICL, eq. 7, is the same function with demonstrations in the prompt) and the
  reward-guided score ``sum_t [log pi(y_t | x, y_<t) + lambda * r(x, y_<=t)]`` (eqs. 5-6, a
  *sum*). Length effect: a sum of log-probabilities (each < 0) favours the shorter answer,
  a mean does not, so ARGS policy accuracy at lambda = 0 differs from the zero-shot policy
  accuracy whenever chosen and rejected differ in length. ``score_rgd(...,
  length_norm=True)`` is the length-normalised variant (the mean over tokens), which at
  lambda = 0 equals :func:`score_base` exactly; the evaluation reports it as
  ``policy_accuracy_length_norm`` beside the paper's ``policy_accuracy``.
* :func:`behavioural_alignment` - Definition 3 with ROUGE-1, ROUGE-L and MiniLM cosine.
* :func:`win_rate`, :func:`bon_win_rate_ceiling` - the circular win rate (a reward model
  judging its own guided output against zero-shot) and what any selector reaches against
  one random draw when judged by its own score, ``n / (n + 1)``. The ceiling belongs to the
  comparison with a random draw, not with the zero-shot answer:
  :func:`pool_draw_win_rates` computes that comparison for a Best-of-N selector exactly.
* :func:`rank_agreement` - Kendall tau, Spearman rho and Pearson r across methods between an
  upstream metric and generation quality, with the number of methods and a bootstrap
  interval over users.

Ties. The paper counts a pair as correct only when ``s(chosen) > s(rejected)`` strictly, so
a constant scorer gets accuracy 0 instead of the chance level 0.5. ``ties="half"`` (the
default) counts a tie as half a success; ``ties="strict"`` is the paper's definition.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.split import EvaluationInputError
from ttp_diag.stats import CORRELATIONS, bootstrap_correlations, pair_wins, resample_counts

__all__ = [
    "pairwise_accuracy",
    "score_base",
    "score_rgd",
    "behavioural_alignment",
    "win_rate",
    "bon_win_rate_ceiling",
    "pool_draw_win_rates",
    "rank_agreement",
]


def _wins(a, b, ties: str) -> np.ndarray:
    """:func:`ttp_diag.stats.pair_wins` (the one tie rule), errors as EvaluationInputError."""
    try:
        return pair_wins(a, b, ties)
    except ValueError as exc:
        raise EvaluationInputError(str(exc)) from None


def pairwise_accuracy(
    pairs: pd.DataFrame,
    chosen: str = "score_chosen",
    rejected: str = "score_rejected",
    *,
    by: str = "user_id",
    ties: str = "half",
) -> pd.DataFrame:
    """Share of pairs ranked correctly, per user and overall (Definitions 1 and 2).

    Parameters
    ----------
    pairs : pandas.DataFrame
        One row per pair with the two score columns and ``by``.
    chosen, rejected : str
        Score columns of the chosen and the rejected side.
    by : str
        Grouping column (the user).
    ties : {"half", "strict"}

    Returns
    -------
    pandas.DataFrame
        ``user_id, accuracy, n_pairs``; the last two rows are ``__mean_over_users__`` (the
        paper's average of per-user accuracies) and ``__pooled__`` (all pairs).

    Examples
    --------
    >>> p = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "score_chosen": [2, 1, 0, 5],
    ...                   "score_rejected": [1, 1, 3, 4]})
    >>> a = pairwise_accuracy(p)  # a: 1 + 0.5 + 0 of 3, b: 1 of 1
    >>> a["user_id"].tolist(), a["accuracy"].tolist(), a["n_pairs"].tolist()
    (['a', 'b', '__mean_over_users__', '__pooled__'], [0.5, 1.0, 0.75, 0.625], [3, 1, 4, 4])
    >>> pairwise_accuracy(p, ties="strict")["accuracy"].iloc[0].round(4)
    np.float64(0.3333)
    """
    for c in (chosen, rejected, by):
        if c not in pairs.columns:
            raise EvaluationInputError(f"pairwise_accuracy: column {c!r} not found (columns: "
                                       f"{list(pairs.columns)}); score the pairs first")
    if pairs.empty:
        raise EvaluationInputError("pairwise_accuracy: no pairs; build the pairs table first")
    w = _wins(pairs[chosen], pairs[rejected], ties)
    g = pd.DataFrame({by: pairs[by].astype(str).to_numpy(), "w": w}).groupby(by, sort=True)["w"]
    out = pd.DataFrame({by: g.mean().index, "accuracy": g.mean().to_numpy(),
                        "n_pairs": g.size().to_numpy()})
    tail = pd.DataFrame({by: ["__mean_over_users__", "__pooled__"],
                         "accuracy": [out["accuracy"].mean(), w.mean()],
                         "n_pairs": [len(w), len(w)]})
    return pd.concat([out, tail], ignore_index=True).rename(columns={by: "user_id"})


def score_base(token_logprobs: Sequence[float]) -> float:
    """Length-normalised log-likelihood ``(1/|y|) sum_t log pi(y_t | x, y_<t)`` (eq. 4/7).

    Examples
    --------
    >>> score_base([-1.0, -2.0, -3.0])
    -2.0
    """
    lp = np.asarray(token_logprobs, float)
    if lp.size == 0:
        raise EvaluationInputError("an empty completion has no log-likelihood; drop empty "
                                   "texts from the pairs")
    return float(lp.mean())


def score_rgd(token_logprobs: Sequence[float], prefix_rewards: Sequence[float],
              lam: float, *, length_norm: bool = False) -> float:
    """Reward-guided score ``sum_t [log pi(y_t | x, y_<t) + lam * r(x, y_<=t)]`` (eqs. 5-6).

    ``prefix_rewards[t]`` is the reward model's score of the completion's first ``t + 1``
    tokens: the score ARGS uses when it chooses token ``t``. ``length_norm=True`` divides
    by the number of tokens (the mean instead of the paper's sum), which removes the sum's
    preference for short answers and equals :func:`score_base` at ``lam = 0``.

    Examples
    --------
    >>> score_rgd([-1.0, -2.0], [0.5, 0.25], lam=2.0)  # (-1 + 1) + (-2 + 0.5)
    -1.5
    >>> score_rgd([-1.0, -2.0], [0.5, 0.25], lam=2.0, length_norm=True)
    -0.75
    """
    lp, r = np.asarray(token_logprobs, float), np.asarray(prefix_rewards, float)
    if lp.shape != r.shape:
        raise EvaluationInputError(f"{lp.size} token log-probabilities but {r.size} prefix "
                                   "rewards; score one prefix per token")
    if lam < 0:
        raise EvaluationInputError(f"lambda={lam}; the reward weight must be >= 0 (0 = the "
                                   "base policy)")
    total = float((lp + lam * r).sum())
    return total / lp.size if length_norm and lp.size else total


def behavioural_alignment(generated: Sequence[str], gold: Sequence[str], *,
                          minilm: bool = True, encoder=None) -> pd.DataFrame:
    """ROUGE-1 F, ROUGE-L F and MiniLM cosine of each generated text against its gold.

    The per-user and overall values of Definition 3 are means of these rows.

    Returns
    -------
    pandas.DataFrame
        ``rouge1``, ``rougeL`` and (with ``minilm=True``) ``minilm`` per text.

    Examples
    --------
    >>> behavioural_alignment(["the cat sat"], ["the cat ran away"], minilm=False).round(4)
       rouge1  rougeL
    0  0.5714  0.5714
    """
    from ttp_diag.gen.labels import rouge_scores

    generated, gold = [str(x) for x in generated], [str(x) for x in gold]
    if len(generated) != len(gold):
        raise EvaluationInputError(f"{len(generated)} generated texts but {len(gold)} gold "
                                   "texts; pass one gold text per generation")
    r = rouge_scores(generated, gold)
    out = pd.DataFrame({"rouge1": r["rouge1_f"].to_numpy(), "rougeL": r["rougeL_f"].to_numpy()})
    if minilm:
        if encoder is None:
            from ttp_diag.gen.retrieval import MiniLMEncoder

            encoder = MiniLMEncoder()
        a, b = encoder.encode(generated), encoder.encode(gold)
        out["minilm"] = (np.asarray(a) * np.asarray(b)).sum(1)
    return out


def win_rate(score_method: Sequence[float], score_baseline: Sequence[float], *,
             ties: str = "half") -> float:
    """Share of queries where a scorer prefers the method's output to the baseline's.

    With the reward model that guided the method as the scorer, this is the *circular* win
    rate of the paper's Table 5.

    Examples
    --------
    >>> win_rate([0.9, 0.2, 0.5], [0.1, 0.3, 0.5])  # win, loss, tie
    0.5
    """
    return float(_wins(score_method, score_baseline, ties).mean())


def bon_win_rate_ceiling(n: int) -> float:
    """Win rate of the best of ``n`` i.i.d. draws over one more draw, judged by the same
    continuous score: ``n / (n + 1)``. Any selector judged by its own score reaches it
    without being better by the truth, which is why circular win rates look so good.

    Examples
    --------
    >>> bon_win_rate_ceiling(8)
    0.8888888888888888
    """
    if int(n) < 1:
        raise EvaluationInputError(f"n={n}; the ceiling needs n >= 1")
    return n / (n + 1)


def pool_draw_win_rates(table: pd.DataFrame, score: str, *, reward: str = "reward",
                        query: str = "query_id", ties: str = "half") -> pd.DataFrame:
    """Best-of-the-pool against one uniformly random draw from the same pool, exactly.

    The comparison the ``n / (n + 1)`` ceiling belongs to. For each query the selector keeps
    the candidate(s) with the highest ``score`` (a tied top group is averaged, as the exact
    Best-of-N engine does) and is compared with a candidate drawn uniformly from the pool
    (the selected one included), by the selector's own score (``circular``) and by the true
    reward (``true``); ties count as ``ties`` says. Judged by its own score a Best-of-M
    selector with a unique top wins every comparison but the draw of itself:
    ``ceiling = 1 - 1/(2M)`` with ties as half, the finite-pool form of ``n / (n + 1)``.

    Returns
    -------
    pandas.DataFrame
        ``query_id, circular, true, ceiling, pool`` (one row per query).

    Examples
    --------
    >>> t = pd.DataFrame({"query_id": "q", "score_a": [3.0, 2.0, 1.0, 0.0],
    ...                   "reward": [0.1, 0.9, 0.5, 0.3]})
    >>> pool_draw_win_rates(t, "score_a")[["circular", "true", "ceiling"]].round(3)
       circular   true  ceiling
    0     0.875  0.125    0.875
    """
    for c in (score, reward, query):
        if c not in table.columns:
            raise EvaluationInputError(f"pool_draw_win_rates: column {c!r} not found "
                                       f"(columns: {list(table.columns)})")
    rows = []
    for q, g in table.groupby(query, sort=True):
        s, r = g[score].to_numpy(float), g[reward].to_numpy(float)
        top = s == s.max()
        m = len(s)
        circ = float(_wins(np.full(m, s.max()), s, ties).mean())
        true = float(np.mean([_wins(np.full(m, rt), r, ties).mean() for rt in r[top]]))
        ceiling = 1.0 - 0.5 / m if ties == "half" else 1.0 - 1.0 / m
        rows.append(dict(query_id=q, circular=circ, true=true, ceiling=ceiling, pool=m))
    return pd.DataFrame(rows)


def rank_agreement(
    per_user: pd.DataFrame,
    upstream: Sequence[str],
    quality: str,
    *,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Across methods: does an upstream metric rank them as generation quality does?

    Parameters
    ----------
    per_user : pandas.DataFrame
        Tidy ``method, user_id, metric, value`` (one value per method, user and metric).
    upstream : sequence of str
        Upstream metric names (ranking accuracy, policy accuracy, win rate, rho_eff, ...).
    quality : str
        The generation-quality metric (e.g. ``"rouge1"``).
    ci : float or None
        Level of a percentile bootstrap over users (users resampled with replacement, method
        means recomputed; :func:`ttp_diag.stats.bootstrap_correlations`, one resample matrix
        shared by every upstream metric); None skips it. NaN with fewer than 5 users.
    n_boot, seed : int

    Returns
    -------
    pandas.DataFrame
        ``upstream, quality, statistic, estimate, ci_low, ci_high, n_methods, n_users``.
        Methods lacking either metric are left out; ``n_methods`` says how many remain (fewer
        than 3 gives NaN: no correlation rests on two points).

    Examples
    --------
    >>> rows = [(m, u, k, v) for m, base in [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    ...         for u in ["u1", "u2"] for k, v in [("acc", base), ("rouge1", -base)]]
    >>> d = pd.DataFrame(rows, columns=["method", "user_id", "metric", "value"])
    >>> rank_agreement(d, ["acc"], "rouge1", ci=None)[["statistic", "estimate", "n_methods"]]
          statistic  estimate  n_methods
    0   kendall_tau      -1.0          4
    1  spearman_rho      -1.0          4
    2     pearson_r      -1.0          4
    """
    need = {"method", "user_id", "metric", "value"} - set(per_user.columns)
    if need:
        raise EvaluationInputError(f"rank_agreement: columns {sorted(need)} missing; pass the "
                                   "tidy method/user_id/metric/value table")
    wide = per_user.pivot_table(index=["method", "user_id"], columns="metric", values="value",
                                aggfunc="mean")
    if quality not in wide.columns:
        raise EvaluationInputError(f"quality metric {quality!r} not in the table (metrics: "
                                   f"{sorted(wide.columns)})")
    users = sorted(wide.index.get_level_values("user_id").unique())
    # one resample matrix over all users: every upstream metric is bootstrapped on the same
    # draws (shared resamples), so their intervals can be compared
    counts = resample_counts(len(users), n_boot, seed) if ci is not None and users else None
    rows = []
    for up in upstream:
        if up not in wide.columns:
            raise EvaluationInputError(f"upstream metric {up!r} not in the table (metrics: "
                                       f"{sorted(wide.columns)})")
        x = wide[up].unstack("method").reindex(users)
        y = wide[quality].unstack("method").reindex(users).reindex(columns=x.columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # n_users says it
            r = bootstrap_correlations(x.to_numpy(float), y.to_numpy(float), ci=ci,
                                       counts=counts)
        for k in CORRELATIONS:
            rows.append(dict(upstream=up, quality=quality, statistic=k,
                             estimate=r["estimate"][k], ci_low=r["ci_low"][k],
                             ci_high=r["ci_high"][k], n_methods=r["n_points"],
                             n_users=r["n_users"]))
    return pd.DataFrame(rows)
