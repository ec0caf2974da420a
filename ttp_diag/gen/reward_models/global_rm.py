"""The paper's Global RM: one LoRA reward model on all users' rows, re-weighted soft BCE."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, ScoreTableError

from ._util import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    NotFittedError,
    _atomic_save_tensors,
    _atomic_write_json,
    _check_labels,
    _check_texts,
    _torch,
    data_fingerprint,
    groups_to_codes,
    new_save_dir,
    read_config,
    swap_in_dir,
)
from .base import RewardModel, register
from .losses import bce_loss, extreme_score_weights
from .training import LoRATrainer


@register("global")
class GlobalRewardModel(LoRATrainer, RewardModel):
    """One reward model trained on all users' rows with re-weighted BCE.

    Parameters
    ----------
    backbone : str, optional
        Local Hugging Face model directory; default all-MiniLM-L6-v2 (offline).
    weighting : {"inverse_frequency", "none"}, default "inverse_frequency"
        Sample re-weighting of extreme scores, see :func:`extreme_score_weights`.
    n_bins, max_weight : int, float
        Settings of :func:`extreme_score_weights`.
    contrastive : bool, default False
        The paper's Global RM uses BCE alone; True adds the high-score term.
    **kwargs
        Shared settings: ``max_length=128``, ``batch_size=32``, ``epochs=3``,
        ``lr=2e-4`` (LoRA), ``head_lr=1e-3``, ``use_lora=True``, ``lora_r=8``,
        ``lora_alpha=16``, ``lora_dropout=0.05``, ``lora_layers=None`` (all layers; ``k``
        adapts only the top ``k``, which makes CPU training cheaper), ``pooling="mean"``
        (or ``"last"``), ``head="mlp"`` (or ``"linear"``), ``device="auto"``,
        ``precision="fp32"`` (or ``"bf16"``), ``seed=0``, ``verbose=True``,
        ``truncation="middle"`` (inputs longer than ``max_length`` lose the middle of the
        query input, never the candidate at the end; ``"right"``/``"left"`` also work).

    Attributes
    ----------
    history_ : dict
        ``epoch_losses``, ``n_train``, ``samples_seen``, ``seconds``, ``ms_per_sample``.

    Examples
    --------
    Fit needs at least two rows (one row has nothing to learn a ranking from); here on a
    tiny random backbone, as in the tests:

    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> rm = GlobalRewardModel(tiny_backbone(), epochs=1, verbose=False)
    >>> rm = rm.fit(["[Document]: good", "[Document]: bad"], [0.9, 0.1])
    >>> r = rm.score(["[Document]: good"])
    >>> r.shape, bool(0 < r[0] < 1)
    ((1,), True)
    """

    _kind = "global"
    personalized = False

    def __init__(
        self,
        backbone: str | None = None,
        *,
        weighting: str = "inverse_frequency",
        n_bins: int = 10,
        max_weight: float = 10.0,
        contrastive: bool = False,
        **kwargs,
    ):
        super().__init__(backbone, contrastive=contrastive, **kwargs)
        self.weighting = weighting
        self.n_bins = n_bins
        self.max_weight = max_weight

    def _sample_weights(self, y: np.ndarray) -> np.ndarray:
        if self.weighting == "none":
            return np.ones_like(y)
        if self.weighting == "inverse_frequency":
            return extreme_score_weights(y, self.n_bins, self.max_weight)
        raise ConfigError(f"weighting={self.weighting!r}; use 'inverse_frequency' or 'none'")

    def _loss(self, mu_raw, s_raw, y, w, g):
        loss = bce_loss(mu_raw, y, w)
        if self.contrastive:
            loss = loss + self._contrast(_torch().sigmoid(mu_raw), y, g)
        return loss

    def fit(self, texts: Sequence[str] | pd.DataFrame, labels=None, groups=None, *,
            text_col: str = "rm_text", prompts: Sequence[str] | None = None,
            prompt_col: str | None = None) -> GlobalRewardModel:
        """Train on formatted reward-model inputs and rewards in [0, 1].

        Parameters
        ----------
        texts : sequence of str or pandas.DataFrame
            Reward-model inputs (E.2 prompt with the candidate), all users pooled; or a
            labelled candidate table (its train-split rows are used, see :meth:`fit_table`).
        labels : array-like of float in [0, 1]
            Required with a sequence of texts.
        groups : array-like, optional
            Query ids; batches keep a query's rows together.
        prompts : sequence of str, optional
            The context of each text (then ``texts`` are the responses; the prompt is cut
            from the left to fit ``max_length``).

        Returns
        -------
        self
        """
        if isinstance(texts, pd.DataFrame):
            return self.fit_table(texts, text_col=text_col, prompt_col=prompt_col)
        if labels is None:
            raise ConfigError("pass labels= (one reward in [0, 1] per text)")
        texts = _check_texts(texts)
        y = _check_labels(np.asarray(labels, dtype=float))
        if len(texts) != len(y):
            raise ConfigError(f"texts has {len(texts)} items but labels has {len(y)}")
        if len(texts) < 2:
            raise ScoreTableError(f"need at least 2 training rows, got {len(texts)}")
        if self.weighting not in ("inverse_frequency", "none"):
            raise ConfigError(f"weighting={self.weighting!r}; use 'inverse_frequency' or 'none'")
        g = groups_to_codes(groups, len(texts))
        self._build(two_heads=False)
        ids = self._tokenize(texts, None if prompts is None else _check_texts(prompts, "prompts"))
        self.history_ = self._train(ids, y, g, int(self.seed), "global RM")
        self.history_["data_sha"] = data_fingerprint(
            texts if prompts is None else [f"{p}\0{t}" for p, t in zip(prompts, texts,
                                                                      strict=True)], y)
        return self

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                  prompt_col: str | None = None) -> GlobalRewardModel:
        """Train on the pooled train-split rows of a labelled candidate table (responses in
        ``text_col``, their context in ``prompt_col`` when given)."""
        from .tables import train_rows

        tr = train_rows(table, [text_col, "reward", "query_id"]
                        + ([prompt_col] if prompt_col else []), "GlobalRewardModel")
        return self.fit(tr[text_col].tolist(), tr["reward"].to_numpy(float),
                        groups=tr["query_id"].to_numpy(),
                        prompts=None if prompt_col is None else tr[prompt_col].astype(str).tolist())

    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        """Predicted reward in [0, 1] per text (a response after its ``prompt`` when
        given); ``users`` is ignored (one model for all).

        Examples
        --------
        >>> from ttp_diag.gen.reward_models import tiny_backbone
        >>> rm = GlobalRewardModel(tiny_backbone(), epochs=1, verbose=False)
        >>> rm.fit(["a good title", "bad", "a fine title"], [0.9, 0.1, 0.7]).score(["x"]).shape
        (1,)
        """
        self._require_fitted()
        texts = _check_texts(texts)
        pr = None if prompts is None else _check_texts(prompts, "prompts")
        mu, _ = self._infer(self._tokenize(texts, pr), desc="global RM score")
        return mu

    def _require_fitted(self):
        if not hasattr(self, "_net") or not hasattr(self, "history_"):
            raise NotFittedError("GlobalRewardModel is not fitted; call fit() or load() first")

    def save(self, path: str | os.PathLike) -> Path:
        """Save LoRA + head weights and settings to directory ``path`` (atomic).

        Returns
        -------
        pathlib.Path
        """
        self._require_fitted()
        path = Path(path)
        tmp = new_save_dir(path)
        try:
            cfg = self._settings_json()
            cfg["history"] = self.history_
            if getattr(self, "fit_key_", None):
                cfg["fit_key"] = self.fit_key_
            _atomic_write_json(cfg, tmp / CONFIG_NAME)
            _atomic_save_tensors(self._snapshot(), tmp / WEIGHTS_NAME, {"kind": self._kind})
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return swap_in_dir(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, backbone: str | None = None,
             device: str | None = None, **overrides: Any) -> GlobalRewardModel:
        """Rebuild a saved model (loads the backbone once, then the saved tensors).

        Parameters
        ----------
        path : path-like
            Directory written by :meth:`save`.
        backbone : str, optional
            Override the saved backbone path (e.g. after moving the model).
        device : str, optional
            Override the saved device setting.
        """
        from ._util import load_tensors

        path = Path(path)
        cfg = read_config(path, cls._kind)
        params = {**dict(cfg["params"]), **overrides}
        params = {k: v for k, v in params.items() if k in cls._param_names()}
        if backbone is not None:
            params["backbone"] = backbone
        if device is not None:
            params["device"] = device
        obj = cls(**params)
        obj._build(two_heads=False)
        obj._load_tensors(load_tensors(path / WEIGHTS_NAME)[0])  # damaged: named error
        obj.history_ = cfg.get("history", {})
        if cfg.get("fit_key"):
            obj.fit_key_ = cfg["fit_key"]
        return obj
