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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, ScoreTableError
from ttp_diag.io import atomic_write_parquet

if TYPE_CHECKING:
    from ttp_diag.gen.tasks import TaskSpec

__all__ = [
    "RM_KINDS",
    "PIPELINE_RM_INPUT",
    "FittedRewardModels",
    "add_rm_inputs",
    "fit_reward_models",
    "load_reward_models",
    "score_table",
]

logger = logging.getLogger(__name__)

RM_KINDS = ("global", "det", "prob")
_KEY_COLUMNS = ["user_id", "query_id", "cand_id", "split", "reward"]

#: How the pipeline (``ttp-diag run``, its shards, Ray actors and the LoRA policy) hands
#: candidates to its reward models: the candidate ``text`` is the response and
#: ``rm_prompt`` (appendix E.2 up to ``[Document]:``, from :func:`add_rm_inputs` with
#: ``prompt_col="rm_prompt"``) its prompt, in training and in scoring alike, as the
#: evaluation suite and ``ttp-diag zoo`` score them. Pass as
#: ``fit_reward_models(table, **PIPELINE_RM_INPUT)`` / ``score_table(table, m, **...)``.
PIPELINE_RM_INPUT = {"rm_text_col": "text", "rm_prompt_col": "rm_prompt"}


def _require(table: pd.DataFrame, cols: Sequence[str], where: str, fix: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ScoreTableError(
            f"{where}: column(s) {missing} not found (columns: {list(table.columns)}); {fix}"
        )


def add_rm_inputs(
    table: pd.DataFrame,
    task: str | TaskSpec,
    *,
    input_col: str = "body",
    text_col: str = "text",
    out_col: str = "rm_text",
    formatter: Callable[[Any, str, str], str] | None = None,
    prompt_col: str | None = None,
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
    prompt_col : str, optional
        Also write the reward-model *prompt* (the E.2 input without its candidate,
        :func:`ttp_diag.gen.reward_models.base.rm_context`) to this column, so that models
        read prompt and response separately (``fit_reward_models(..., rm_text_col="text",
        rm_prompt_col=prompt_col)``). Only with the default formatter.

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
            raise ConfigError(
                f"add_rm_inputs: column {col!r} has {int(bad.sum())} missing value(s) "
                f"(first at row {table.index[bad][0]!r}); fill with '' or drop those rows"
            )
    out = table.copy()
    out[out_col] = [formatter(task, str(q), str(c))
                    for q, c in zip(out[input_col], out[text_col], strict=True)]
    if prompt_col is not None:
        from ttp_diag.gen.prompts import reward_model_prompt
        from ttp_diag.gen.reward_models.base import rm_context

        if formatter is not reward_model_prompt:
            raise ConfigError("add_rm_inputs: prompt_col= needs the default formatter (the "
                              "prompt of a custom format is unknown); drop formatter=")
        ctx = {q: rm_context(task, q) for q in out[input_col].astype(str).unique()}
        out[prompt_col] = out[input_col].astype(str).map(ctx)
    return out


@dataclass
class FittedRewardModels(Mapping):
    """What :func:`fit_reward_models` returns: the fitted models and their training times.

    A read-only mapping ``kind -> model`` (so ``models["det"]``, ``list(models)`` and
    ``score_table(table, models)`` work), with the seconds per kind in ``timings``.

    Attributes
    ----------
    models : dict
        ``{kind: RewardModel}`` in training order.
    timings : dict
        ``{kind: seconds}`` spent fitting (or loading, when resumed).
    """

    models: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> Any:
        return self.models[kind]

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def get(self, key: str, default: Any = None) -> Any:
        return self.models.get(key, default)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: kind, class, seconds."""
        return pd.DataFrame({"kind": list(self.models),
                             "model": [type(m).__name__ for m in self.models.values()],
                             "seconds": [self.timings.get(k, np.nan) for k in self.models]})


def fit_reward_models(
    table: pd.DataFrame,
    *,
    kinds: Sequence[str] = RM_KINDS,
    output_dir: str | os.PathLike | None = None,
    rm_text_col: str = "rm_text",
    rm_prompt_col: str | None = None,
    backbone: str | None = None,
    settings: Mapping[str, Any] | None = None,
    kind_settings: Mapping[str, Mapping[str, Any]] | None = None,
    verbose: bool = True,
) -> FittedRewardModels:
    """Train reward models of any registered kinds on the train split.

    Parameters
    ----------
    table : pandas.DataFrame
        Labelled candidates with ``user_id``, ``query_id``, ``split``, ``reward`` and the
        reward-model input ``rm_text_col`` (see :func:`add_rm_inputs`).
    kinds : sequence of str, default ("global", "det", "prob")
        Names from :data:`ttp_diag.gen.reward_models.REGISTRY`.
    output_dir : path-like, optional
        Each model is saved under ``output_dir/<kind>``. A finished model saved with the same
        settings and training rows is loaded instead of retrained (per user for det/prob), so
        an interrupted call resumes; see ``RewardModel.fit_or_resume``.
    rm_text_col : str, default "rm_text"
    rm_prompt_col : str, optional
        Each row's reward-model prompt (``add_rm_inputs(prompt_col=...)``); then
        ``rm_text_col`` must hold the response alone (e.g. ``"text"``) and every model reads
        prompt and response separately (the prompt cut from the left, never the response).
    backbone : str, optional
        Local model directory shared by all models; default MiniLM (offline).
    settings : mapping, optional
        Constructor settings shared by all kinds (``epochs``, ``max_length``, ...); a
        setting a kind does not have is left out for that kind.
    kind_settings : mapping, optional
        Per-kind overrides, e.g. ``{"global": {"epochs": 1}}``.
    verbose : bool, default True

    Returns
    -------
    FittedRewardModels
        Mapping ``kind -> model`` with ``.timings`` (seconds per kind).

    Examples
    --------
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> t = pd.DataFrame({"user_id": "u", "query_id": [0, 0, 1, 1], "split": "train",
    ...                   "reward": [0.9, 0.1, 0.8, 0.2], "rm_text": ["a", "b", "c", "d"]})
    >>> fit = fit_reward_models(t, kinds=["global"], backbone=tiny_backbone(),
    ...                         settings={"epochs": 1}, verbose=False)
    >>> list(fit), sorted(fit.timings)
    (['global'], ['global'])
    """
    from ttp_diag.gen.reward_models import REGISTRY, get_model_class
    from ttp_diag.gen.reward_models.tables import train_rows

    for k in kinds:
        get_model_class(k)  # one clear error for an unknown kind, before any training
    _require(table, ["user_id", "query_id", "split", "reward", rm_text_col], "fit_reward_models",
             "label the table (labels.label_table) and add the RM inputs (add_rm_inputs)")
    train_rows(table, [rm_text_col], "fit_reward_models")
    settings = dict(settings or {})
    settings.setdefault("verbose", verbose)
    kind_settings = dict(kind_settings or {})
    unknown = sorted(set(kind_settings) - set(REGISTRY))
    if unknown:
        raise ConfigError(f"kind_settings has unknown kind(s) {unknown}; use {sorted(REGISTRY)}")
    out_dir = Path(output_dir) if output_dir is not None else None
    result = FittedRewardModels()
    for kind in kinds:
        t0 = time.perf_counter()
        cls = get_model_class(kind)
        valid = set(cls._param_names())
        kw = {k: v for k, v in settings.items() if k in valid}
        kw.update(kind_settings.get(kind, {}))
        if "backbone" in valid:
            kw.setdefault("backbone", backbone)
        model = cls(**kw)
        path = out_dir / kind if out_dir is not None else None
        result.models[kind] = model.fit_or_resume(table, path, text_col=rm_text_col,
                                                  prompt_col=rm_prompt_col)
        result.timings[kind] = time.perf_counter() - t0
    return result


def load_reward_models(output_dir: str | os.PathLike, *, kinds: Sequence[str] = RM_KINDS,
                       backbone: str | None = None,
                       verbose: bool | None = None) -> FittedRewardModels:
    """Load models saved by :func:`fit_reward_models` with ``output_dir``.

    ``backbone`` and ``verbose`` (progress bars while scoring) override the saved settings
    when given.

    Examples
    --------
    >>> import tempfile
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> t = pd.DataFrame({"user_id": "u", "query_id": [0, 0], "split": "train",
    ...                   "reward": [0.9, 0.1], "rm_text": ["a", "b"]})
    >>> d = tempfile.mkdtemp()
    >>> _ = fit_reward_models(t, kinds=["det"], output_dir=d, backbone=tiny_backbone(),
    ...                       settings={"epochs": 1}, verbose=False)
    >>> list(load_reward_models(d, kinds=["det"]))
    ['det']
    >>> load_reward_models(d, kinds=["det"], verbose=True)["det"].verbose
    True
    """
    from ttp_diag.gen.reward_models import get_model_class

    out = Path(output_dir)
    result = FittedRewardModels()
    for kind in kinds:
        cls = get_model_class(kind)
        over: dict[str, Any] = {"backbone": backbone} if backbone is not None else {}
        if verbose is not None and "verbose" in cls._param_names():
            over["verbose"] = bool(verbose)
        result.models[kind] = cls.load(out / kind, **over)
    return result


def score_table(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    rm_text_col: str = "rm_text",
    out_path: str | os.PathLike | None = None,
    keep_rm_text: bool = False,
    rm_prompt_col: str | None = None,
) -> pd.DataFrame:
    """Score every candidate with each model and return the score table.

    Parameters
    ----------
    table : pandas.DataFrame
        Candidates with ``user_id``, ``query_id``, ``cand_id``, ``split``, ``reward``,
        ``text`` and ``rm_text_col``; other columns are kept.
    models : mapping
        ``{kind: RewardModel}`` for registered kinds (any subset), e.g. the
        :class:`FittedRewardModels` from :func:`fit_reward_models`; other keys are ignored.
        Each model writes its ``score_columns`` (``score_<kind>``; ``var_prob`` too).
    rm_text_col : str, default "rm_text"
    out_path : path-like, optional
        Write the result to this Parquet file (atomically).
    keep_rm_text : bool, default False
        Keep the reward-model input column in the output.
    rm_prompt_col : str, optional
        Score ``rm_text_col`` as responses after these prompts (as in
        :func:`fit_reward_models`).

    Returns
    -------
    pandas.DataFrame
        The table with ``score_global``, ``score_det``, ``score_prob`` and ``var_prob``
        for the models given. ``attrs["scoring_seconds"]`` holds the time per model.

    Examples
    --------
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> t = pd.DataFrame({"user_id": "u", "query_id": [0, 0, 1, 1], "cand_id": [0, 1, 0, 1],
    ...                   "split": ["train", "train", "val", "val"], "reward": [0.9, 0.1, 0.5, 0.4],
    ...                   "text": list("abcd"), "rm_text": list("abcd")})
    >>> fit = fit_reward_models(t, kinds=["prob"], backbone=tiny_backbone(),
    ...                         settings={"epochs": 1}, verbose=False)
    >>> list(score_table(t, fit).columns)
    ['user_id', 'query_id', 'cand_id', 'split', 'reward', 'score_prob', 'var_prob', 'text']
    """
    _require(table, _KEY_COLUMNS + ["text", rm_text_col], "score_table",
             "score a labelled candidate table with RM inputs (labels.label_table, "
             "add_rm_inputs); the score table keeps the candidate text in 'text'")
    dup = table.duplicated(["query_id", "cand_id"])
    if dup.any():
        first = table.loc[dup, ["query_id", "cand_id"]].iloc[0].tolist()
        raise ConfigError(
            f"score_table: {int(dup.sum())} duplicate (query_id, cand_id) row(s), first "
            f"{first}; de-duplicate the candidate table"
        )
    from ttp_diag.gen.reward_models import REGISTRY

    rms = {k: v for k, v in models.items() if k in REGISTRY and v is not None}
    if not rms:
        raise ConfigError("no reward models given; pass a mapping with keys from "
                         f"{sorted(REGISTRY)}")
    out = table.copy()
    texts = out[rm_text_col].tolist()
    prompts = None if rm_prompt_col is None else out[rm_prompt_col].astype(str).tolist()
    users = out["user_id"].astype(str).to_numpy()
    secs: dict[str, float] = {}
    score_cols: list[str] = []
    for kind, rm in rms.items():
        t0 = time.perf_counter()
        cols = (rm.score_columns(texts, users) if prompts is None
                else rm.score_columns(texts, users, prompts=prompts))
        for c, v in cols.items():
            out[c] = v
            score_cols.append(c)
        secs[kind] = time.perf_counter() - t0
    if not keep_rm_text:
        # "text" holds the responses themselves; "rm_text" (the joined E.2 input) and the
        # prompt column are inputs, not scores
        drop = [c for c in ("rm_text", rm_text_col, rm_prompt_col)
                if c is not None and c != "text" and c in out.columns]
        out = out.drop(columns=drop)
    front = [c for c in _KEY_COLUMNS + score_cols + ["text"] if c in out.columns]
    out = out[front + [c for c in out.columns if c not in front]].reset_index(drop=True)
    for c in score_cols:
        if not np.isfinite(out[c].to_numpy(float)).all():
            raise FloatingPointError(f"score_table: non-finite values in {c!r}; the model "
                                     "diverged, retrain with a lower lr")
    out.attrs["scoring_seconds"] = secs
    if out_path is not None:
        atomic_write_parquet(out, out_path)
    return out
