"""The reward-model contract: one base class and the registry ``REGISTRY`` (name -> class).

Every reward model, from the paper's three (``global``, ``det``, ``prob``) to the zoo of the
second paper (``mpu``, ``lore``, ``pref``, ``pal``, ``vpl``, ...), is a :class:`RewardModel`:

* the constructor stores settings only (scikit-learn style, ``get_params``/``set_params``);
* ``fit(...)`` returns ``self``; learned attributes end in ``_``;
* ``score(texts, users=None, *, prompts=None) -> numpy.ndarray``: one reward per text,
  higher is better; calling it before ``fit``/``load`` raises :class:`NotFittedError`.
  Prompt and response are separate all the way through: ``texts`` are the responses
  (candidates) and ``prompts`` their contexts (for the E.2 format everything up to
  ``[Document]:``, see :func:`rm_context`); a model that reads both as one sequence cuts
  the prompt from the LEFT to fit its length and never the response. ``prompts=None``
  means the texts are whole reward-model inputs (the older convention);
* ``adapt(support_pairs, user=None)`` fits a new user's user-specific parameters from their
  support pairs with every shared parameter frozen (the second paper's protocol, section
  3.1); users a personalized model has no parameters for (no pair above ``min_gap``) are
  scored by the population model and listed in ``fallback_users_``;
* ``save(path)`` writes a new folder and swaps it in with renames (safe under concurrent
  saves); ``RewardModel.load(path)`` (a classmethod) rebuilds it;
* ``fit_table(table, text_col=...)`` is how :func:`ttp_diag.gen.scoring.fit_reward_models`
  trains it from a labelled candidate table (responses in ``text_col``, contexts in
  ``prompt_col``), and ``fit_or_resume(table, path)`` reuses a
  finished save when the settings and the training rows are unchanged (resume after a kill).

Adding a family is one file: subclass :class:`RewardModel`, decorate it with
``@register("name")``, import the module in ``__init__.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, CorruptFileError

from ._util import CONFIG_NAME, NotFittedError, data_fingerprint, init_param_names

__all__ = ["REGISTRY", "RewardModel", "register", "get_model_class", "rm_context"]

logger = logging.getLogger("ttp_diag.gen.reward_models")

REGISTRY: dict[str, type[RewardModel]] = {}

# Settings that do not change what a model learns; ignored when deciding to resume.
_RUNTIME_SETTINGS = frozenset({"verbose", "device", "output_dir", "backbone", "progress",
                               "score_batch_size"})  # scoring speed, not the model


def register(name: str) -> Callable[[type], type]:
    """Class decorator: put a :class:`RewardModel` subclass in ``REGISTRY`` under ``name``.

    Examples
    --------
    >>> {"global", "det", "prob"} <= set(REGISTRY)
    True
    """

    def deco(cls: type) -> type:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ConfigError(f"reward model name {name!r} is already registered")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


def get_model_class(name: str) -> type[RewardModel]:
    """The registered class for ``name``, with an error listing the names there are.

    Examples
    --------
    >>> get_model_class("global").__name__
    'GlobalRewardModel'
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown reward-model kind {name!r}; registered kinds: {sorted(REGISTRY)}"
        ) from None


def rm_context(task, query_input: str) -> str:
    """The reward-model prompt of appendix E.2 without its candidate: everything up to and
    including ``[Document]:``, so that ``rm_context(t, x) + " " + y`` is
    :func:`ttp_diag.gen.prompts.reward_model_prompt` ``(t, x, y)``.

    Examples
    --------
    >>> from ttp_diag.gen.prompts import reward_model_prompt
    >>> rm_context("lamp4", "Cats rule.").splitlines()[-1]
    '[Document]:'
    >>> rm_context("lamp4", "Cats rule.") + " Cats Win" == reward_model_prompt(
    ...     "lamp4", "Cats rule.", "Cats Win")
    True
    """
    from ttp_diag.gen.prompts import reward_model_prompt

    return reward_model_prompt(task, query_input, "").rstrip()


class RewardModel:
    """Base class of every reward model (see the module docstring for the contract)."""

    name: ClassVar[str] = "base"
    #: False for models that give every user the same reward (``users`` is ignored).
    personalized: ClassVar[bool] = True

    # --- settings (scikit-learn convention) ---------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return init_param_names(cls)

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor settings (scikit-learn convention)."""
        return {n: getattr(self, n) for n in self._param_names() if hasattr(self, n)}

    def set_params(self, **params: Any) -> RewardModel:
        """Set constructor settings (scikit-learn convention); returns self."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(f"unknown parameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    # --- the contract ------------------------------------------------------------------
    def fit(self, *args: Any, **kwargs: Any) -> RewardModel:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    @classmethod
    def can_adapt(cls) -> bool:
        """Whether :meth:`adapt` works: a non-personalized family (nothing to adapt) or a
        personalized one that overrides it."""
        return not cls.personalized or cls.adapt is not RewardModel.adapt

    def adapt(self, support_pairs: pd.DataFrame, user: str | None = None) -> RewardModel:
        """Adapt to a new user from support pairs, shared parameters frozen.

        A non-personalized model has nothing user-specific and returns unchanged; the
        personalized families override this. Returns self.
        """
        if not self.personalized:
            return self
        adaptable = sorted(n for n, c in REGISTRY.items() if c.personalized and c.can_adapt())
        raise ConfigError(
            f"{type(self).__name__} has no adapt(): it trains one pointwise model per user "
            "from labelled rows, not user parameters on a shared model; fit it on the "
            f"user's labelled rows instead, or use a family that supports adapt(): "
            f"{', '.join(adaptable)}")

    def save(self, path: str | os.PathLike) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> RewardModel:
        raise NotImplementedError  # pragma: no cover - abstract

    def _is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _require_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call fit() or load() first"
            )

    # --- training from a score/candidate table -----------------------------------------
    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                  prompt_col: str | None = None) -> RewardModel:
        """Train from a labelled candidate table (``user_id``, ``query_id``, ``split``,
        ``reward``, the response ``text_col`` and its context ``prompt_col``; without
        ``prompt_col``, ``text_col`` holds whole reward-model inputs); train-split rows
        only."""
        raise NotImplementedError  # pragma: no cover - abstract

    def score_columns(self, texts: Sequence[str], users: Sequence | None, *,
                      prompts: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The score-table columns this model writes: ``{"score_<name>": rewards}``."""
        return {f"score_{self.name}": self.score(texts, users, prompts=prompts)}

    def fit_key(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                prompt_col: str | None = None) -> str:
        """Fingerprint of the settings and the training rows; equal keys mean a saved
        model can be reused instead of retrained."""
        tr = table[table["split"] == "train"]
        params = {k: v for k, v in self.get_params().items() if k not in _RUNTIME_SETTINGS}
        h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
        h.update(self.name.encode())
        h.update(data_fingerprint(tr[text_col].astype(str).tolist(),
                                  tr["reward"].to_numpy(float)).encode())
        h.update(data_fingerprint(tr["user_id"].astype(str).tolist(),
                                  tr["query_id"].factorize()[0]).encode())
        if prompt_col is not None:
            h.update(data_fingerprint(tr[prompt_col].astype(str).tolist(),
                                      np.zeros(len(tr))).encode())
        return h.hexdigest()[:16]

    def fit_or_resume(self, table: pd.DataFrame, path: str | os.PathLike | None, *,
                      text_col: str = "rm_text", prompt_col: str | None = None) -> RewardModel:
        """``fit_table`` then ``save(path)``; or, when ``path`` holds a model saved from the
        same settings and training rows, load that one instead (resume after a kill).

        Returns the fitted model (``self`` or the loaded one).
        """
        kw = {} if prompt_col is None else {"prompt_col": prompt_col}
        if path is None:
            return self.fit_table(table, text_col=text_col, **kw)
        path = Path(path)
        key = self.fit_key(table, text_col=text_col, prompt_col=prompt_col)
        cfg_f = path / CONFIG_NAME
        if cfg_f.exists():
            try:
                saved_key = json.loads(cfg_f.read_text()).get("fit_key")
            except (OSError, ValueError):
                saved_key = None
            if saved_key == key:
                over = {k: getattr(self, k) for k in ("backbone", "device", "verbose")
                        if hasattr(self, k) and getattr(self, k) is not None}
                try:
                    return type(self).load(path, **over)
                except CorruptFileError as exc:  # truncated weights: recompute them
                    logger.warning("%s Retraining the %s model.", exc, self.name)
            else:
                logger.warning("%s holds a %s model trained on other data or settings; "
                               "retraining", path, self.name)
        self.fit_table(table, text_col=text_col, **kw)
        self.fit_key_ = key
        self.save(path)
        return self
