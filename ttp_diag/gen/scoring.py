"""From a labelled candidate table to a score table: train the three RMs and score.

The score table (see ``DESIGN.md``) has one row per candidate with ``user_id``,
``query_id``, ``cand_id``, ``split``, ``reward``, ``text`` and one ``score_<rm>`` column per
reward model: ``score_global``, ``score_det``, ``score_prob`` and the probabilistic
model's predicted variance ``var_prob``.

Typical use::

    from ttp_diag.gen.scoring import add_rm_inputs, fit_reward_models, score_table
    table = add_rm_inputs(candidates, task="lamp4")         # E.2 prompt per candidate
    models = fit_reward_models(table, output_dir="runs/rm")  # resumable
    scores = score_table(table, models, out_path="runs/scores.parquet")

Every reward model trains on ``split == "train"`` rows only and scores every row.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RM_KINDS",
    "add_rm_inputs",
    "fit_reward_models",
    "load_reward_models",
    "score_table",
    "write_parquet_atomic",
]

logger = logging.getLogger(__name__)

RM_KINDS = ("global", "det", "prob")
_KEY_COLUMNS = ["user_id", "query_id", "cand_id", "split", "reward"]


def _require(table: pd.DataFrame, cols: Sequence[str], where: str, fix: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(
            f"{where}: column(s) {missing} not found (columns: {list(table.columns)}); {fix}"
        )


def add_rm_inputs(
    table: pd.DataFrame,
    task,
    *,
    input_col: str = "body",
    text_col: str = "text",
    out_col: str = "rm_text",
    formatter: Callable[[Any, str, str], str] | None = None,
) -> pd.DataFrame:
    """Add the reward-model input (appendix E.2 prompt) for every candidate.

    Parameters
    ----------
    table : pandas.DataFrame
        Candidates with the query's input text (``input_col``) and the candidate
        (``text_col``).
    task : str
        Task key understood by ``formatter`` (e.g. ``"lamp4"``).
    input_col : str, default "body"
        The query input shown after ``[Input]:`` (for LaMP-4 the article text).
    text_col : str, default "text"
        The candidate shown after ``[Document]:``.
    out_col : str, default "rm_text"
    formatter : callable, optional
        ``formatter(task, query_input, candidate) -> str``; default
        :func:`ttp_diag.gen.prompts.reward_model_prompt`.

    Returns
    -------
    pandas.DataFrame
        A copy with ``out_col`` added.

    Examples
    --------
    >>> df = pd.DataFrame({"body": ["Cats rule the web."], "text": ["Cats Win"]})
    >>> add_rm_inputs(df, "lamp4")["rm_text"][0].splitlines()[1:]
    ['[Input]: Cats rule the web.', '[Document]: Cats Win']
    """
    _require(table, [input_col, text_col], "add_rm_inputs",
             "pass input_col= (query input) and text_col= (candidate)")
    if formatter is None:
        from ttp_diag.gen.prompts import reward_model_prompt as formatter
    for col in (input_col, text_col):
        bad = table[col].isna().to_numpy()
        if bad.any():
            raise ValueError(
                f"add_rm_inputs: column {col!r} has {int(bad.sum())} missing value(s) "
                f"(first at row {table.index[bad][0]!r}); fill with '' or drop those rows"
            )
    out = table.copy()
    out[out_col] = [formatter(task, str(q), str(c))
                    for q, c in zip(out[input_col], out[text_col])]
    return out


def _train_rows(table: pd.DataFrame) -> pd.DataFrame:
    tr = table[table["split"] == "train"]
    if tr.empty:
        raise ValueError(
            "no rows with split == 'train' (splits present: "
            f"{sorted(map(str, table['split'].unique()))}); reward models train on the train split"
        )
    return tr


def fit_reward_models(
    table: pd.DataFrame,
    *,
    kinds: Sequence[str] = RM_KINDS,
    output_dir: str | os.PathLike | None = None,
    rm_text_col: str = "rm_text",
    backbone: str | None = None,
    settings: Mapping[str, Any] | None = None,
    kind_settings: Mapping[str, Mapping[str, Any]] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train the Global, Deterministic User and Probabilistic User RMs on the train split.

    Parameters
    ----------
    table : pandas.DataFrame
        Labelled candidates with ``user_id``, ``query_id``, ``split``, ``reward`` and the
        reward-model input ``rm_text_col`` (see :func:`add_rm_inputs`).
    kinds : sequence of {"global", "det", "prob"}
    output_dir : path-like, optional
        Models are saved under ``output_dir/<kind>``; a finished Global RM and finished
        users are loaded instead of retrained, so an interrupted call resumes. Saved models
        whose training rows (or, for the Global RM, settings) differ are retrained.
    rm_text_col : str, default "rm_text"
    backbone : str, optional
        Local model directory shared by all models; default MiniLM (offline).
    settings : mapping, optional
        Constructor settings shared by all kinds (``epochs``, ``max_length``, ...).
    kind_settings : mapping, optional
        Per-kind overrides, e.g. ``{"global": {"epochs": 1}}``.
    verbose : bool, default True

    Returns
    -------
    dict
        ``{"global": GlobalRewardModel, "det": UserRewardModels, "prob": ...}`` plus
        ``"timings"``: seconds per kind.

    Examples
    --------
    >>> models = fit_reward_models(table, settings={"epochs": 2})  # doctest: +SKIP
    """
    from ttp_diag.gen.reward_models import GlobalRewardModel, UserRewardModels, data_fingerprint

    bad = [k for k in kinds if k not in RM_KINDS]
    if bad:
        raise ValueError(f"unknown reward-model kind(s) {bad}; use a subset of {RM_KINDS}")
    _require(table, ["user_id", "query_id", "split", "reward", rm_text_col], "fit_reward_models",
             "label the table (labels.label_table) and add the RM inputs (add_rm_inputs)")
    settings = dict(settings or {})
    settings.setdefault("verbose", verbose)
    kind_settings = dict(kind_settings or {})
    unknown = sorted(set(kind_settings) - set(RM_KINDS))
    if unknown:
        raise ValueError(f"kind_settings has unknown kind(s) {unknown}; use {RM_KINDS}")
    out_dir = Path(output_dir) if output_dir is not None else None
    models: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for kind in kinds:
        t0 = time.perf_counter()
        kw = {**settings, **dict(kind_settings.get(kind, {}))}
        if kind == "global":
            path = out_dir / "global" if out_dir is not None else None
            tr = _train_rows(table)
            saved = None
            if path is not None and (path / "config.json").exists():
                saved = GlobalRewardModel.load(path, backbone=backbone)
                same_data = saved.history_.get("data_sha") == data_fingerprint(
                    tr[rm_text_col].tolist(), tr["reward"].to_numpy(float))
                wanted = GlobalRewardModel(backbone, **kw).get_params()
                same_settings = all(
                    saved.get_params()[k] == wanted[k]
                    for k in wanted if k not in ("backbone", "verbose", "device"))
                if not (same_data and same_settings):
                    logger.warning("%s holds a Global RM trained on other data or settings; "
                                   "retraining", path)
                    saved = None
            if saved is not None:
                models[kind] = saved
            else:
                rm = GlobalRewardModel(backbone, **kw)
                rm.fit(tr[rm_text_col].tolist(), tr["reward"].to_numpy(float),
                       groups=tr["query_id"].to_numpy())
                if path is not None:
                    rm.save(path)
                models[kind] = rm
        else:
            kw.setdefault("output_dir", out_dir / kind if out_dir is not None else None)
            rm = UserRewardModels(kind, backbone, text_col=rm_text_col, **kw)
            models[kind] = rm.fit(table)
        timings[kind] = time.perf_counter() - t0
    models["timings"] = timings
    return models


def load_reward_models(output_dir: str | os.PathLike, *, kinds: Sequence[str] = RM_KINDS,
                       backbone: str | None = None) -> dict[str, Any]:
    """Load models saved by :func:`fit_reward_models` with ``output_dir``.

    Examples
    --------
    >>> models = load_reward_models("runs/rm")  # doctest: +SKIP
    """
    from ttp_diag.gen.reward_models import GlobalRewardModel, UserRewardModels

    out = Path(output_dir)
    models: dict[str, Any] = {}
    for kind in kinds:
        if kind == "global":
            models[kind] = GlobalRewardModel.load(out / "global", backbone=backbone)
        elif kind in ("det", "prob"):
            models[kind] = UserRewardModels.load(out / kind, backbone=backbone)
        else:
            raise ValueError(f"unknown reward-model kind {kind!r}; use {RM_KINDS}")
    return models


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to Parquet through a temporary file and ``os.replace``."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def score_table(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    rm_text_col: str = "rm_text",
    out_path: str | os.PathLike | None = None,
    keep_rm_text: bool = False,
) -> pd.DataFrame:
    """Score every candidate with each model and return the score table.

    Parameters
    ----------
    table : pandas.DataFrame
        Candidates with ``user_id``, ``query_id``, ``cand_id``, ``split``, ``reward``,
        ``text`` and ``rm_text_col``; other columns are kept.
    models : mapping
        ``{"global": ..., "det": ..., "prob": ...}`` (any subset), e.g. from
        :func:`fit_reward_models`. Other keys (``"timings"``) are ignored.
    rm_text_col : str, default "rm_text"
    out_path : path-like, optional
        Write the result to this Parquet file (atomically).
    keep_rm_text : bool, default False
        Keep the reward-model input column in the output.

    Returns
    -------
    pandas.DataFrame
        The table with ``score_global``, ``score_det``, ``score_prob`` and ``var_prob``
        for the models given. ``attrs["scoring_seconds"]`` holds the time per model.

    Examples
    --------
    >>> scores = score_table(table, models, out_path="scores.parquet")  # doctest: +SKIP
    """
    _require(table, _KEY_COLUMNS + ["text", rm_text_col], "score_table",
             "score a labelled candidate table with RM inputs (labels.label_table, "
             "add_rm_inputs); the score table keeps the candidate text in 'text'")
    dup = table.duplicated(["query_id", "cand_id"])
    if dup.any():
        first = table.loc[dup, ["query_id", "cand_id"]].iloc[0].tolist()
        raise ValueError(
            f"score_table: {int(dup.sum())} duplicate (query_id, cand_id) row(s), first "
            f"{first}; de-duplicate the candidate table"
        )
    rms = {k: v for k, v in models.items() if k in RM_KINDS and v is not None}
    if not rms:
        raise ValueError(f"no reward models given; pass a dict with keys from {RM_KINDS}")
    out = table.copy()
    texts = out[rm_text_col].tolist()
    secs: dict[str, float] = {}
    for kind, rm in rms.items():
        t0 = time.perf_counter()
        if kind == "global":
            out["score_global"] = rm.predict(texts)
        elif kind == "det":
            out["score_det"] = rm.predict(texts, users=out["user_id"].to_numpy())
        else:
            mu, var = rm.predict(texts, users=out["user_id"].to_numpy(), return_var=True)
            out["score_prob"] = mu
            out["var_prob"] = var
        secs[kind] = time.perf_counter() - t0
    if not keep_rm_text:
        out = out.drop(columns=[rm_text_col])
    front = [c for c in _KEY_COLUMNS + ["score_global", "score_det", "score_prob", "var_prob",
                                         "text"] if c in out.columns]
    out = out[front + [c for c in out.columns if c not in front]].reset_index(drop=True)
    for c in ("score_global", "score_det", "score_prob", "var_prob"):
        if c in out.columns and not np.isfinite(out[c].to_numpy(float)).all():
            raise FloatingPointError(f"score_table: non-finite values in {c!r}; the model "
                                     "diverged, retrain with a lower lr")
    out.attrs["scoring_seconds"] = secs
    if out_path is not None:
        write_parquet_atomic(out, out_path)
    return out
