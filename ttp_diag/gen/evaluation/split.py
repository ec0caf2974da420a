"""The evaluation protocol's user split (second paper, section 3.1).

Users are divided into *training users* (their data fits shared parameters and chooses
hyper-parameters such as the ARGS weight lambda) and *adaptation users* (evaluated). Each
adaptation user's items are split by time: the latest items form the *query set*
(evaluation only), the items before the first query item form the *support set*
(demonstrations, per-user reward models, per-user LoRA). The split is a pure function of
the items, the settings and ``seed``, and is written to the run folder
(``eval/user_split.parquet`` + ``eval/user_split.json``) so that every method sees the same
users and items.

Examples
--------
>>> import pandas as pd
>>> items = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 4,
...                       "item_id": [f"{u}{i}" for u in "ab" for i in range(4)],
...                       "position": [0, 1, 2, 3] * 2})
>>> s = split_users(items, n_train_users=1, query_fraction=0.25, seed=0)
>>> s.table.groupby(["role", "set"]).size().to_dict()
{('adapt', 'query'): 1, ('adapt', 'support'): 3, ('train', 'train'): 4}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.exceptions import EvaluationInputError  # its home; imported here by the suite

__all__ = ["UserSplit", "split_users", "EvaluationInputError"]


@dataclass
class UserSplit:
    """Which users train, which adapt, and each item's set.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per item: ``user_id``, ``item_id``, ``position``, ``role``
        (``train``/``adapt``) and ``set`` (``train`` for training users, ``support`` or
        ``query`` for adaptation users).
    settings : dict
        The arguments the split was made with (seed included).
    """

    table: pd.DataFrame
    settings: dict = field(default_factory=dict)

    @property
    def train_users(self) -> list[str]:
        return sorted(self.table.loc[self.table["role"] == "train", "user_id"].unique())

    @property
    def adapt_users(self) -> list[str]:
        return sorted(self.table.loc[self.table["role"] == "adapt", "user_id"].unique())

    def items_in(self, which: str, user: str | None = None) -> pd.DataFrame:
        """Rows of one set (``train``, ``support``, ``query``), optionally of one user."""
        t = self.table[self.table["set"] == which]
        return t if user is None else t[t["user_id"] == user]

    def set_of(self) -> dict[str, str]:
        """``item_id -> set``."""
        return dict(zip(self.table["item_id"], self.table["set"], strict=True))

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``user_split.parquet`` and ``user_split.json`` atomically into ``folder``."""
        from ttp_diag.gen.candidates import atomic_write_parquet, atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(self.table, folder / "user_split.parquet")
        meta = dict(self.settings, train_users=self.train_users, adapt_users=self.adapt_users,
                    counts=self.table.groupby("set").size().to_dict())
        atomic_write_text(folder / "user_split.json", json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> UserSplit:
        folder = Path(folder)
        meta = json.loads((folder / "user_split.json").read_text())
        return cls(pd.read_parquet(folder / "user_split.parquet"), meta)


def split_users(
    items: pd.DataFrame,
    *,
    n_train_users: int | float = 0.34,
    query_fraction: float = 0.25,
    query_items: set | None = None,
    max_support: int | None = None,
    seed: int = 0,
) -> UserSplit:
    """Seeded user split and per-user time split.

    Parameters
    ----------
    items : pandas.DataFrame
        ``user_id``, ``item_id`` (unique) and ``position`` (time order within a user).
    n_train_users : int or float
        Number of training users, or their share in (0, 1) (rounded, at least one user is
        kept on each side).
    query_fraction : float
        Share of an adaptation user's items (the latest ``ceil(q * n)``) in the query set.
        Ignored when ``query_items`` is given.
    query_items : set of item ids, optional
        Use exactly these items as query sets (e.g. the pipeline's ``val`` examples, so the
        reward models trained on the pipeline's ``train`` split never saw a query item).
        Every support item must still be older than the user's first query item.
    max_support : int, optional
        Keep only the latest ``max_support`` support items per adaptation user, and the
        latest ``max_support`` items per training user (the rest is dropped from the split,
        not moved to the query set).
    seed : int
        Seed of the user permutation.

    Returns
    -------
    UserSplit

    See Also
    --------
    ttp_diag.gen.reward_models.tables.split_pair_users : the same protocol on a preference
        pairs table (train/adapt users, support/query queries) for the reward-model zoo.
    """
    need = [c for c in ("user_id", "item_id", "position") if c not in items.columns]
    if need:
        raise EvaluationInputError(
            f"split_users: items lack column(s) {need} (columns: {list(items.columns)}); "
            "pass the run folder's items.parquet")
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].iloc[0]
        raise EvaluationInputError(f"split_users: item_id {dup!r} occurs twice; ids must be "
                                   "unique")
    if not 0 < query_fraction < 1:
        raise EvaluationInputError(
            f"query_fraction={query_fraction}; use a share in (0, 1), e.g. 0.25")
    users = sorted(items["user_id"].astype(str).unique())
    if len(users) < 2:
        raise EvaluationInputError(
            f"split_users needs at least 2 users (one training, one adaptation), got {users}")
    n_tr = (int(round(n_train_users * len(users))) if isinstance(n_train_users, float)
            and n_train_users < 1 else int(n_train_users))
    if not 1 <= n_tr <= len(users) - 1:
        raise EvaluationInputError(
            f"n_train_users={n_train_users} gives {n_tr} training users of {len(users)}; "
            f"use a number in [1, {len(users) - 1}] or a share in (0, 1)")
    rng = np.random.default_rng(seed)
    perm = [users[i] for i in rng.permutation(len(users))]
    train = set(perm[:n_tr])
    rows = []
    for uid, g in items.assign(user_id=items["user_id"].astype(str)).groupby("user_id"):
        g = g.sort_values(["position", "item_id"], kind="mergesort")
        if uid in train:
            # Training users keep their latest items (the same cap as support sets).
            g = g if max_support is None else g.tail(int(max_support))
            rows.append(g.assign(role="train", set="train"))
            continue
        if query_items is not None:
            is_q = g["item_id"].isin(query_items).to_numpy()
        else:
            n_q = max(1, math.ceil(query_fraction * len(g)))
            is_q = np.zeros(len(g), bool)
            is_q[len(g) - n_q:] = True
        if not is_q.any():
            raise EvaluationInputError(
                f"adaptation user {uid!r} has no query items; give it later items or make "
                "it a training user")
        first_q = g["position"].to_numpy()[is_q].min()
        sup = g[~is_q & (g["position"].to_numpy() < first_q)]
        if max_support is not None:
            sup = sup.tail(int(max_support))
        if sup.empty:
            raise EvaluationInputError(
                f"adaptation user {uid!r} has no support items before its first query item "
                f"(position {first_q}); drop the user or lower query_fraction")
        rows.append(sup.assign(role="adapt", set="support"))
        rows.append(g[is_q].assign(role="adapt", set="query"))
    table = pd.concat(rows, ignore_index=True)[["user_id", "item_id", "position", "role", "set"]]
    settings = dict(n_train_users=n_train_users, query_fraction=query_fraction,
                    query_items=None if query_items is None else len(query_items),
                    max_support=max_support, seed=seed)
    return UserSplit(table, settings)
