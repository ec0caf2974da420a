"""Training data for the reward models: train rows of a candidate table, and preference pairs.

* :func:`train_rows` - the ``split == "train"`` rows, with one error naming what is missing.
* :func:`pairs_from_pools` - Bradley-Terry pairs built from labelled candidate pools: within
  one query, candidate ``i`` is *chosen* over ``j`` when its true reward exceeds ``j``'s by at
  least ``min_gap`` (near-ties carry no preference and are skipped). At most
  ``max_pairs_per_query`` pairs per query are kept, drawn with a seeded generator.
* :func:`subsample_user_train` - keep a seeded share of each user's train queries (the first
  paper's per-user data-volume sweep, appendix B.5); nested across shares.
* :func:`split_pair_users` - the second paper's protocol (section 3.1): users are split, seeded,
  into training users (all their pairs are ``"train"``) and adaptation users, whose pairs are
  split per query into ``"support"`` (used to adapt the user-specific parameters) and
  ``"query"`` (held out for evaluation).

The pairs DataFrame has the agreed columns ``user_id, split, prompt, chosen, rejected,
source`` (plus ``query_id``, ``gap``). Prompt and response stay separate (the reward-model
contract): ``prompt`` is the context both sides answer (for the E.2 format, everything up to
``[Document]:``; ``""`` for none) and ``chosen``/``rejected`` are the two responses. A model
trains on ``(prompt, chosen)`` vs ``(prompt, rejected)`` and scores with
``score(responses, users, prompts=...)``, so training and scoring see the same context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, ConfigTypeError, ScoreTableError

__all__ = ["PAIR_COLUMNS", "check_pairs", "pair_prompts", "pairs_from_pools", "split_pair_users",
           "subsample_user_train", "train_rows"]

PAIR_COLUMNS = ["user_id", "split", "prompt", "chosen", "rejected", "source"]


def train_rows(table: pd.DataFrame, cols: Sequence[str], where: str) -> pd.DataFrame:
    """Rows with ``split == "train"``; errors name missing columns or an empty train split.

    Examples
    --------
    >>> t = pd.DataFrame({"split": ["train", "val"], "reward": [0.1, 0.2]})
    >>> len(train_rows(t, ["reward"], "demo"))
    1
    """
    missing = [c for c in ["split", *cols] if c not in table.columns]
    if missing:
        raise ScoreTableError(f"{where}: column(s) {missing} not found (columns: "
                              f"{list(table.columns)}); label the table and add the "
                              "reward-model inputs (add_rm_inputs)")
    tr = table[table["split"] == "train"]
    if tr.empty:
        raise ScoreTableError(
            "no rows with split == 'train' (splits present: "
            f"{sorted(map(str, table['split'].unique()))}); reward models train on the train split"
        )
    return tr


def _user_seed(seed: int, user: str) -> int:
    import hashlib

    h = hashlib.sha256(f"{int(seed)}\0{user}".encode()).digest()
    return int.from_bytes(h[:8], "little")


def subsample_user_train(table: pd.DataFrame, pct: float, *, seed: int = 0) -> pd.DataFrame:
    """Keep ``pct`` percent of each user's train-split queries (all candidates of a kept query).

    Each user's train queries are put in a random order drawn from ``seed`` and the user id
    (independent of the table's row order and of the other users), and the first
    ``ceil(pct / 100 * n_queries)`` of them are kept (at least one). Shares of the same seed
    are therefore nested: the queries kept at 10% are among those kept at 50%. Rows of other
    splits are kept unchanged.

    Parameters
    ----------
    table : pandas.DataFrame
        Candidates with ``user_id``, ``query_id`` and ``split``.
    pct : float
        Percent in (0, 100]; 100 returns the table unchanged.
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        The kept rows, in the table's order (index kept).

    Examples
    --------
    >>> t = pd.DataFrame({"user_id": "u", "query_id": [0, 0, 1, 1, 2, 2, 3],
    ...                   "split": ["train"] * 6 + ["val"]})
    >>> half = subsample_user_train(t, 50, seed=0)
    >>> half["query_id"].nunique(), sorted(half["split"].unique())
    (3, ['train', 'val'])
    >>> set(subsample_user_train(t, 10, seed=0)["query_id"]) <= set(half["query_id"])
    True
    """
    if isinstance(pct, bool) or not isinstance(pct, (int, float, np.number)) or not (
            0 < float(pct) <= 100):
        raise ConfigError(f"pct must be a percent in (0, 100] (share of each user's train queries "
                          f"kept; 100 keeps all), got {pct!r}")
    missing = [c for c in ("user_id", "query_id", "split") if c not in table.columns]
    if missing:
        raise ScoreTableError(f"subsample_user_train: column(s) {missing} not found (columns: "
                              f"{list(table.columns)})")
    if float(pct) == 100:
        return table
    train = table["split"] == "train"
    keep_q: set = set()
    tr = table.loc[train, ["user_id", "query_id"]].drop_duplicates()
    for user, g in tr.groupby(tr["user_id"].astype(str), sort=True):
        qs = np.array(sorted(g["query_id"].tolist(), key=str), dtype=object)
        order = np.random.default_rng(_user_seed(seed, user)).permutation(len(qs))
        k = max(1, int(np.ceil(float(pct) / 100.0 * len(qs) - 1e-9)))
        keep_q.update((user, q) for q in qs[order[:k]].tolist())
    key = pd.MultiIndex.from_arrays([table["user_id"].astype(str), table["query_id"]])
    return table[~train.to_numpy() | key.isin(list(keep_q))]


def pairs_from_pools(
    table: pd.DataFrame,
    *,
    text_col: str = "rm_text",
    prompt_col: str | None = None,
    min_gap: float = 0.1,
    max_pairs_per_query: int | None = 20,
    split: str | None = "train",
    seed: int = 0,
) -> pd.DataFrame:
    """Preference pairs from labelled candidate pools (higher vs lower true reward).

    Parameters
    ----------
    table : pandas.DataFrame
        Candidates with ``user_id``, ``query_id``, ``split``, ``reward`` and ``text_col``.
    text_col : str, default "rm_text"
        The response (candidate) each side of a pair holds.
    prompt_col : str, optional
        The context of each row (e.g. ``rm_prompt`` from
        :func:`ttp_diag.gen.scoring.add_rm_inputs`), copied to the pairs' ``prompt``; it
        must be the same for every candidate of a query. None: ``prompt = ""`` (no context;
        ``text_col`` then holds whole reward-model inputs).
    min_gap : float, default 0.1
        Keep a pair only when the rewards differ by at least this much.
    max_pairs_per_query : int or None, default 20
        Seeded subsample per query (None keeps all).
    split : str or None, default "train"
        Use only candidates of this split (None: all rows); the pairs keep each row's split.
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        ``user_id, split, prompt, chosen, rejected, source, query_id, gap`` with
        ``source = "pools"``.

    Examples
    --------
    >>> t = pd.DataFrame({"user_id": "u", "query_id": "q", "split": "train",
    ...                   "reward": [0.9, 0.5, 0.45], "rm_text": ["A", "B", "C"]})
    >>> pairs_from_pools(t)[["chosen", "rejected"]].values.tolist()
    [['A', 'B'], ['A', 'C']]
    """
    need = ["user_id", "query_id", "split", "reward", text_col] + (
        [prompt_col] if prompt_col is not None else [])
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ScoreTableError(f"pairs_from_pools: column(s) {missing} not found (columns: "
                              f"{list(table.columns)}); pass text_col= for the reward-model input")
    if min_gap < 0:
        raise ConfigError(f"min_gap={min_gap!r} must be >= 0")
    t = table if split is None else table[table["split"] == split]
    rng = np.random.default_rng(seed)
    out = []
    for qid, g in t.groupby("query_id", sort=False):
        r = g["reward"].to_numpy(float)
        i, j = np.nonzero(r[:, None] - r[None, :] >= max(min_gap, 1e-12))
        if len(i) == 0:
            continue
        if max_pairs_per_query is not None and len(i) > max_pairs_per_query:
            keep = np.sort(rng.choice(len(i), max_pairs_per_query, replace=False))
            i, j = i[keep], j[keep]
        txt = g[text_col].to_numpy()
        if prompt_col is None:
            prompt = ""
        else:
            ps = g[prompt_col].astype(str).unique()
            if len(ps) != 1:
                raise ScoreTableError(f"pairs_from_pools: query {qid!r} has {len(ps)} different "
                                      f"{prompt_col!r} values; a query's candidates share one "
                                      "prompt")
            prompt = ps[0]
        out.append(pd.DataFrame({
            "user_id": g["user_id"].astype(str).to_numpy()[i],
            "split": g["split"].to_numpy()[i],
            "prompt": prompt,
            "chosen": txt[i], "rejected": txt[j], "source": "pools",
            "query_id": qid, "gap": r[i] - r[j],
        }))
    if not out:
        return pd.DataFrame(columns=PAIR_COLUMNS + ["query_id", "gap"])
    return pd.concat(out, ignore_index=True)


def split_pair_users(
    pairs: pd.DataFrame,
    *,
    adapt_frac: float = 0.3,
    support_frac: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Seeded training-user / adaptation-user split with support and query sets.

    A fraction ``adapt_frac`` of the users (at least one, at most all but one) become
    adaptation users; for each of them a fraction ``support_frac`` of their queries (at
    least one) go to ``"support"``, the rest to ``"query"``. Training users' pairs become
    ``"train"``. Splitting by query keeps a query's pairs on one side.

    Returns
    -------
    pandas.DataFrame
        A copy of ``pairs`` with ``split`` rewritten and ``role`` = train/adapt.

    See Also
    --------
    ttp_diag.gen.evaluation.split.split_users : the same protocol on items (one row per
        user's text, time-ordered) for the evaluation suite, returning a ``UserSplit``.

    Examples
    --------
    >>> p = pd.DataFrame({"user_id": list("aabbcc"), "query_id": [1, 2, 3, 4, 5, 6],
    ...                   "split": "train", "prompt": "", "chosen": "x", "rejected": "y",
    ...                   "source": "t"})
    >>> split_pair_users(p, adapt_frac=0.34, seed=0).groupby("user_id")["role"].first().tolist()
    ['train', 'train', 'adapt']
    """
    users = np.array(sorted(pairs["user_id"].astype(str).unique()))
    if len(users) < 2:
        raise ScoreTableError(f"split_pair_users needs at least 2 users, got {len(users)}")
    rng = np.random.default_rng(seed)
    n_adapt = int(np.clip(round(adapt_frac * len(users)), 1, len(users) - 1))
    adapt = set(rng.choice(users, n_adapt, replace=False).tolist())
    out = pairs.copy()
    uid = out["user_id"].astype(str)
    out["role"] = np.where(uid.isin(adapt), "adapt", "train")
    qcol = "query_id" if "query_id" in out.columns else "prompt"
    split = np.full(len(out), "train", dtype=object)
    for u in sorted(adapt):
        rows = np.flatnonzero(uid.to_numpy() == u)
        qs = pd.unique(out[qcol].to_numpy()[rows])
        qs = qs[rng.permutation(len(qs))]
        n_sup = int(np.clip(round(support_frac * len(qs)), 1, max(1, len(qs) - 1)))
        sup = set(qs[:n_sup].tolist())
        is_sup = np.array([q in sup for q in out[qcol].to_numpy()[rows]])
        split[rows] = np.where(is_sup, "support", "query")
    out["split"] = split
    return out


def pair_prompts(pairs: pd.DataFrame) -> list[str] | None:
    """The pairs' ``prompt`` column as context strings, or None when every prompt is empty
    (or the column is absent): then ``chosen``/``rejected`` are scored alone.

    Examples
    --------
    >>> pair_prompts(pd.DataFrame({"prompt": ["", ""]})) is None
    True
    >>> pair_prompts(pd.DataFrame({"prompt": ["an article", None]}))
    ['an article', '']
    """
    if "prompt" not in pairs.columns:
        return None
    p = pairs["prompt"].fillna("").astype(str)
    return None if (p == "").all() else p.tolist()


def check_pairs(pairs: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check the agreed pair columns and string texts; returns ``pairs`` unchanged."""
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ScoreTableError(f"{where}: pairs column(s) {missing} not found (columns: "
                              f"{list(pairs.columns)}); pairs need {PAIR_COLUMNS} "
                              "(build them with pairs_from_pools)")
    for c in ("chosen", "rejected"):
        bad = ~pairs[c].map(lambda x: isinstance(x, str))
        if bad.any():
            raise ConfigTypeError(f"{where}: pairs[{c!r}] has {int(bad.sum())} non-string value(s) "
                                  f"(first at row {pairs.index[bad.to_numpy()][0]!r}); drop them")
    return pairs
