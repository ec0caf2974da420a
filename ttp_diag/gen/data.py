"""Loading personalised-generation tasks into per-user, time-ordered examples.

Three input formats are read into one tidy table of *items* (one row per dated
input/output pair of a user):

* LaMP task files: ``*_questions.json`` (a list of ``{"id", "input", "profile": [...]}``)
  plus ``*_outputs.json`` (``{"task", "golds": [{"id", "output"}]}``). Each question is one
  user: its profile items (LaMP-4 ``text``/``title``, LaMP-5 ``abstract``/``title``) and the
  question itself (gold from the outputs file) are that user's items.
* LongLaMP tasks (abstract generation, product review writing, topic writing), as
  distributed on the Hugging Face hub (``LongLaMP/LongLaMP``, exported to JSON/JSONL): one row
  per user with ``input``, ``output`` and ``profile``; profile fields per task are listed in
  :data:`TASKS`.
* The JSONL user format of ``shared/data/lamp4_reconstructed_huffpost/users.jsonl.gz``: one
  user per line, ``{"user_id", "author", "profile": [...], "queries": [...]}`` with profile
  items in LaMP-4 form and queries ``{"id", "input", "output", "date", ...}``.

:func:`build_examples` then applies the paper's construction (appendix D): keep the top-k
users by number of items, cap the samples per user (keeping the latest), and split each
user's examples in time order, the first 80% for training and the last 20% for validation.
Every earlier item of a user stays available to retrieval (:mod:`ttp_diag.gen.retrieval`).

Malformed records are skipped with a reason (or raise with ``strict=True``); every skip is
counted in the :class:`LoadSummary` attached to the result.

Split along its concepts: the task registry lives in :mod:`ttp_diag.gen.tasks`, the format
readers in :mod:`ttp_diag.gen.loaders`; this module builds the examples and re-exports both,
so ``from ttp_diag.gen.data import ...`` keeps working for every public name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ttp_diag.exceptions import ConfigError, DataError
from ttp_diag.gen.loaders import (
    HUFFPOST_PATH,
    load_huffpost_users,
    load_jsonl_users,
    load_lamp,
    load_longlamp,
)
from ttp_diag.gen.records import LoadSummary
from ttp_diag.gen.tasks import ITEM_COLUMNS, TASKS, TaskSpec, get_task

__all__ = [
    "ITEM_COLUMNS",
    "TaskSpec",
    "TASKS",
    "get_task",
    "LoadSummary",
    "DataError",
    "load_jsonl_users",
    "load_huffpost_users",
    "load_lamp",
    "load_longlamp",
    "build_examples",
    "Examples",
    "HUFFPOST_PATH",
]

@dataclass
class Examples:
    """Selected users' items with a train/val split, plus the retrieval pool.

    Attributes
    ----------
    items : pandas.DataFrame
        Every item of the selected users (the retrieval pool, with ``position``).
    examples : pandas.DataFrame
        The capped examples with ``query_id`` (unique) and ``split``.
    summary : dict
        What was kept and skipped, and why.
    """

    items: pd.DataFrame
    examples: pd.DataFrame
    summary: dict


def build_examples(
    items: pd.DataFrame,
    *,
    top_k_users: int | None = 30,
    max_samples_per_user: int | None = 3000,
    val_fraction: float = 0.2,
    min_items: int = 5,
    users: Iterable[str] | None = None,
) -> Examples:
    """Apply the paper's construction: top-k users, capped samples, time-ordered split.

    Parameters
    ----------
    items : DataFrame
        Output of a loader.
    top_k_users : int, optional
        Keep the users with the most items (ties broken by ``user_id``). ``None`` keeps all.
    max_samples_per_user : int, optional
        Cap per user; the latest items are kept (the earlier ones stay in the retrieval pool).
    val_fraction : float
        The last ``ceil(val_fraction * n)`` examples of each user are ``val``.
    min_items : int
        Users with fewer items are skipped (counted in the summary): with too few items
        neither the split nor a per-user reward model makes sense.
    users : iterable of str, optional
        Use exactly these users (after the ``min_items`` check) instead of the top-k.

    Returns
    -------
    Examples

    Examples
    --------
    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "users.jsonl")
    >>> with open(path, "w") as fh:
    ...     for u in range(3):
    ...         prof = [{"id": f"u{u}p{i}", "text": f"story {i}", "title": f"T{i}",
    ...                  "date": f"2021-01-{i + 1:02d}"} for i in range(10 + u)]
    ...         print(json.dumps({"user_id": f"u{u}", "profile": prof}), file=fh)
    >>> items = load_jsonl_users(path)  # the shared HuffPost set: load_huffpost_users()
    >>> ex = build_examples(items, top_k_users=2, max_samples_per_user=10)
    >>> sorted(ex.examples["user_id"].unique())
    ['u1', 'u2']
    >>> ex.examples.groupby("split").size().to_dict()
    {'train': 16, 'val': 4}
    """
    missing = [
        c
        for c in ("user_id", "item_id", "input", "body", "output", "position")
        if c not in items.columns
    ]
    if missing:
        raise DataError(f"items lack column(s) {missing}; build them with a loader of this module")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    summ = dict(items.attrs.get("summary").to_dict()) if "summary" in items.attrs else {}
    counts = items.groupby("user_id").size()
    small = counts[counts < min_items]
    skipped_users = {u: f"only {int(n)} items (< min_items={min_items})" for u, n in small.items()}
    eligible = counts[counts >= min_items]
    if users is not None:
        users = list(users)
        unknown = [u for u in users if u not in counts.index]
        if unknown:
            raise ConfigError(f"requested users not in the data: {unknown[:5]}")
        chosen = [u for u in users if u in eligible.index]
    else:
        order = sorted(eligible.index, key=lambda u: (-int(eligible[u]), str(u)))
        chosen = order if top_k_users is None else order[: int(top_k_users)]
    if not chosen:
        raise ConfigError(f"no user has at least min_items={min_items} items")
    pool = items[items["user_id"].isin(chosen)].copy()
    parts = []
    for uid in chosen:
        u = pool[pool["user_id"] == uid].sort_values("position")
        if max_samples_per_user is not None:
            u = u.tail(int(max_samples_per_user))
        n = len(u)
        n_val = max(1, int(math.ceil(val_fraction * n)))
        split = ["train"] * (n - n_val) + ["val"] * n_val
        u = u.assign(split=split)
        parts.append(u)
    ex = pd.concat(parts, ignore_index=True)
    ex.insert(1, "query_id", ex["item_id"].astype(str))
    if ex["query_id"].duplicated().any():
        # Item ids are only guaranteed unique within a user.
        ex["query_id"] = ex["user_id"].astype(str) + "::" + ex["item_id"].astype(str)
    if ex["query_id"].duplicated().any():
        dup = ex.loc[ex["query_id"].duplicated(), "query_id"].iloc[0]
        raise DataError(
            f"item id {dup!r} occurs twice for the same user; item ids must be unique per user"
        )
    summ.update(
        {
            "n_users_selected": len(chosen),
            "users": chosen,
            "users_skipped": skipped_users,
            "n_examples": int(len(ex)),
            "n_train": int((ex["split"] == "train").sum()),
            "n_val": int((ex["split"] == "val").sum()),
            "top_k_users": top_k_users,
            "max_samples_per_user": max_samples_per_user,
            "val_fraction": val_fraction,
            "min_items": min_items,
        }
    )
    return Examples(items=pool.reset_index(drop=True), examples=ex, summary=summ)
