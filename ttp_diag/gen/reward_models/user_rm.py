"""The paper's Deterministic and Probabilistic User RMs: one LoRA + head per user."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, CorruptFileError, RunFolderError, ScoreTableError

from ._util import (
    CONFIG_NAME,
    NotFittedError,
    _atomic_save_tensors,
    _atomic_write_json,
    _check_labels,
    _check_texts,
    _torch,
    _user_key,
    _user_seed,
    data_fingerprint,
    groups_to_codes,
    new_save_dir,
    read_config,
    swap_in_dir,
)
from .base import RewardModel, register
from .losses import bounded_variance, gaussian_nll, weighted_mse
from .training import LoRATrainer

logger = logging.getLogger("ttp_diag.gen.reward_models")


class UserRewardModels(LoRATrainer, RewardModel):
    """Per-user reward models (deterministic or probabilistic) on one shared backbone.

    Parameters
    ----------
    kind : {"det", "prob"}
        ``"det"``: MSE + contrastive. ``"prob"``: Gaussian NLL (mean and variance heads)
        + contrastive, scored by the mean.
    backbone : str, optional
        Local model directory; default all-MiniLM-L6-v2 (offline).
    output_dir : path-like, optional
        Where each user's LoRA + head file is written as soon as it is trained
        (``users/<id>.safetensors``, atomic). Users whose file exists and whose training
        rows are unchanged are loaded, not retrained, so an interrupted fit resumes.
    text_col : str, default "rm_text"
        Column holding the formatted reward-model input when ``fit`` gets a
        DataFrame.
    beta_nll : float, default 0.0
        ``kind="prob"`` only: 0 for the paper's NLL, > 0 for beta-NLL.
    var_min, var_max : float
        Variance clamp, default [1e-4, 0.5] (appendix D.2).
    **kwargs
        Shared settings as in :class:`GlobalRewardModel` (``contrastive=True``,
        ``contrastive_lambda=1.0``, ``contrastive_margin=0.02``,
        ``contrastive_threshold=0.5``, ``weight_low=0.3``, ``weight_high=1.0``, ...).

    Attributes
    ----------
    users_ : list of str
        Users with a trained model.
    history_ : dict
        Per user: ``epoch_losses``, ``n_train``, ``samples_seen``, ``seconds``,
        ``ms_per_sample`` (and ``resumed`` for users loaded from ``output_dir``).

    Examples
    --------
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> table = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "query_id": [0, 0, 1, 1],
    ...                       "split": "train", "reward": [0.9, 0.1, 0.2, 0.8],
    ...                       "rm_text": ["good", "bad", "good", "bad"]})
    >>> rms = UserRewardModels("prob", tiny_backbone(), epochs=1, verbose=False).fit(table)
    >>> mean, var = rms.score_with_var(table["rm_text"], table["user_id"])
    >>> rms.users_, mean.shape, bool((var <= 0.5).all())
    (['a', 'b'], (4,), True)
    """

    def __init__(
        self,
        kind: str = "prob",
        backbone: str | None = None,
        *,
        output_dir: str | os.PathLike | None = None,
        text_col: str = "rm_text",
        beta_nll: float = 0.0,
        var_min: float = 1e-4,
        var_max: float = 0.5,
        **kwargs,
    ):
        super().__init__(backbone, **kwargs)
        self.kind = kind
        self.output_dir = output_dir
        self.text_col = text_col
        self.beta_nll = beta_nll
        self.var_min = var_min
        self.var_max = var_max

    @property
    def _kind(self) -> str:  # type: ignore[override]
        return self.kind

    def _check_kind(self):
        if self.kind not in ("det", "prob"):
            raise ConfigError(f"kind={self.kind!r}; use 'det' (MSE) or 'prob' (Gaussian NLL)")

    def _outputs(self, mu_raw, s_raw):
        torch = _torch()
        mu = torch.sigmoid(mu_raw)
        var = (bounded_variance(s_raw, self.var_min, self.var_max)
               if s_raw is not None else None)
        return mu, var

    def _loss(self, mu_raw, s_raw, y, w, g):
        mu, var = self._outputs(mu_raw, s_raw)
        if self.kind == "det":
            loss = weighted_mse(mu, y, w)
        else:
            loss = gaussian_nll(mu, var, y, w, beta=self.beta_nll)
        return loss + self._contrast(mu, y, g)

    # input handling ----------------------------------------------------------------------
    def _unpack(self, X, y=None, users=None, groups=None, splits=None, *, need_y: bool):
        if isinstance(X, pd.DataFrame):
            need = [self.text_col, "user_id"] + (["reward"] if need_y else [])
            missing = [c for c in need if c not in X.columns]
            if missing:
                raise ScoreTableError(
                    f"UserRewardModels: column(s) {missing} not found (columns: "
                    f"{list(X.columns)}); the table needs user_id, reward, query_id, split "
                    f"and the formatted reward-model input in {self.text_col!r} "
                    "(set text_col=)"
                )
            texts = X[self.text_col].tolist()
            users = X["user_id"].astype(str).to_numpy()
            y = X["reward"].to_numpy(dtype=float) if need_y else None
            groups = X["query_id"].to_numpy() if "query_id" in X.columns else None
            splits = X["split"].to_numpy() if "split" in X.columns else None
        else:
            texts = list(X)
            if users is None:
                raise ConfigError("pass users= (one user id per text) with array input")
            users = np.asarray([str(u) for u in users])
            if len(users) != len(texts):
                raise ConfigError(f"users has {len(users)} items but there are {len(texts)} texts")
            if need_y:
                if y is None:
                    raise ConfigError("pass labels y= with array input")
                y = np.asarray(y, dtype=float)
                if len(y) != len(texts):
                    raise ConfigError(f"y has {len(y)} items but there are {len(texts)} texts")
            if splits is not None:
                splits = np.asarray(splits)
                if len(splits) != len(texts):
                    raise ConfigError(
                        f"splits has {len(splits)} items but there are {len(texts)} texts")
        texts = _check_texts(texts, self.text_col)
        return texts, y, users, groups, splits

    # fit -----------------------------------------------------------------------------
    def fit(self, X, y=None, *, users=None, groups=None, splits=None, prompts=None):
        """Train one model per user on that user's train-split rows.

        Parameters
        ----------
        X : pandas.DataFrame or sequence of str
            A candidate table with ``user_id``, ``query_id``, ``split``, ``reward`` and the
            reward-model input column ``text_col``; or the input texts.
        y : array-like, optional
            Labels in [0, 1] when ``X`` is a sequence.
        users, groups, splits : array-like, optional
            User id, query id and split per text when ``X`` is a sequence. Rows whose split
            is not ``"train"`` are ignored (when splits are given).
        prompts : array-like of str, optional
            The context of each text (then the texts are responses; the prompt is cut from
            the left to fit ``max_length``). With a table, ``fit_table(prompt_col=)``.

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        self._check_kind()
        texts, y, users, groups, splits = self._unpack(X, y, users, groups, splits,
                                                       need_y=True)
        prompts = self._table_prompts(X, prompts, len(texts))
        keep = np.ones(len(texts), bool) if splits is None else (np.asarray(splits) == "train")
        if not keep.any():
            raise ScoreTableError("no rows with split == 'train'; per-user RMs train on the train "
                                  "split")
        idx = np.flatnonzero(keep)
        texts = [texts[i] for i in idx]
        prompts = None if prompts is None else [prompts[i] for i in idx]
        y = _check_labels(y[idx], "reward (train split)")
        users = users[idx]
        g = groups_to_codes(None if groups is None else np.asarray(groups)[idx], len(idx))
        user_list = list(dict.fromkeys(users.tolist()))
        counts = pd.Series(users).value_counts()
        small = counts[counts < 2]
        if len(small):
            raise ScoreTableError(
                f"user(s) {small.index.tolist()[:5]} have fewer than 2 train rows; "
                "drop them or give them more candidates"
            )

        self._build(two_heads=(self.kind == "prob"))
        out_dir = Path(self.output_dir) if self.output_dir is not None else None
        if out_dir is not None:
            self._write_or_check_config(out_dir)
        self._states: dict[str, dict] = {}
        self.history_: dict[str, dict] = {}
        all_ids = self._tokenize(texts, prompts)
        keyed = texts if prompts is None else [f"{p}\0{t}" for p, t in zip(prompts, texts,
                                                                          strict=True)]
        for u in tqdm(user_list, desc=f"{self.kind} user RMs", disable=not self.verbose):
            f = out_dir / "users" / f"{_user_key(u)}.safetensors" if out_dir else None
            rows = np.flatnonzero(users == u)
            sha = data_fingerprint([keyed[i] for i in rows], y[rows])
            if f is not None and f.exists():
                try:
                    st, hist = _read_user_file(f)
                except CorruptFileError as exc:  # truncated by a crash: retrain this user
                    logger.warning("user %s: %s Retraining this user.", u, exc)
                    st, hist = {}, {}
                hist.pop("_user_id", None)
                if hist.get("data_sha") == sha:
                    self._states[u], self.history_[u] = st, hist
                    self.history_[u]["resumed"] = True
                    continue
                # Same settings but other training rows: the saved model is stale.
                logger.warning("user %s: saved model was trained on other data; retraining", u)
            ids = [all_ids[i] for i in rows]
            hist = self._train(ids, y[rows], g[rows], _user_seed(self.seed, u),
                               f"{self.kind} RM {u}")
            hist["data_sha"] = sha
            self._states[u] = self._snapshot()
            self.history_[u] = hist
            if f is not None:
                meta = {"user_id": str(u), "history": json.dumps(hist)}
                _atomic_save_tensors(self._states[u], f, meta)
        self.users_ = user_list
        return self

    def _write_or_check_config(self, out_dir: Path) -> None:
        cfg = self._settings_json()
        f = out_dir / CONFIG_NAME
        if f.exists():
            old = read_config(out_dir)
            skip = {"verbose", "device", "output_dir"}
            a = {k: v for k, v in old.get("params", {}).items() if k not in skip}
            b = {k: v for k, v in json.loads(json.dumps(cfg["params"], default=str)).items()
                 if k not in skip}
            if a != b or old.get("kind") != cfg["kind"]:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                raise RunFolderError(
                    f"{out_dir} holds user RMs trained with other settings (differ in "
                    f"{diff}); use another output_dir or delete that one to retrain"
                )
        else:
            cfg["params"]["output_dir"] = str(cfg["params"]["output_dir"])
            _atomic_write_json(json.loads(json.dumps(cfg, default=str)), f)

    # score ---------------------------------------------------------------------------
    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        """Each text's reward under its own user's model (the predicted mean); with
        ``prompts``, each text is a response read after its prompt."""
        if users is None:
            raise ConfigError(f"{type(self).__name__}.score needs users= (one id per text)")
        return self._predict(list(texts), users=users, prompts=prompts)

    def score_with_var(self, texts: Sequence[str], users: Sequence, *,
                       prompts: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and variance per text (``kind="prob"`` only)."""
        return self._predict(list(texts), users=users, return_var=True, prompts=prompts)

    def score_columns(self, texts: Sequence[str], users: Sequence | None, *,
                      prompts: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``score_det``, or ``score_prob`` and ``var_prob`` for the probabilistic model."""
        if self.kind == "prob":
            mu, var = self.score_with_var(texts, users, prompts=prompts)
            return {"score_prob": mu, "var_prob": var}
        return {f"score_{self.kind}": self.score(texts, users, prompts=prompts)}

    def _table_prompts(self, X, prompts, n: int) -> list[str] | None:
        col = getattr(self, "_prompt_col", None)
        if prompts is None and isinstance(X, pd.DataFrame) and col is not None:
            if col not in X.columns:
                raise ScoreTableError(f"UserRewardModels: prompt column {col!r} not found "
                                      f"(columns: {list(X.columns)})")
            prompts = X[col]
        if prompts is None:
            return None
        prompts = _check_texts(list(prompts), "prompts")
        if len(prompts) != n:
            raise ConfigError(f"{len(prompts)} prompts for {n} texts; pass one per text")
        return prompts

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                  prompt_col: str | None = None) -> UserRewardModels:
        """Train each user's model on the table's train-split rows (see :meth:`fit`);
        responses in ``text_col``, their context in ``prompt_col`` when given."""
        self.text_col = text_col
        self._prompt_col = prompt_col
        return self.fit(table)

    def fit_or_resume(self, table: pd.DataFrame, path: str | os.PathLike | None, *,
                      text_col: str = "rm_text",
                      prompt_col: str | None = None) -> UserRewardModels:
        """Fit with ``output_dir=path``: users already saved there with the same training
        rows and settings are loaded, the others trained and saved one by one."""
        if path is not None:
            self.output_dir = path
        return self.fit_table(table, text_col=text_col, prompt_col=prompt_col)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the settings and every user's adapter + head to a new folder ``path``
        (built beside it, swapped in by renames)."""
        self._require_fitted()
        path = Path(path)
        tmp = new_save_dir(path)
        try:
            cfg = self._settings_json()
            cfg["params"]["output_dir"] = None
            _atomic_write_json(json.loads(json.dumps(cfg, default=str)), tmp / CONFIG_NAME)
            for u in self.users_:
                meta = {"user_id": str(u), "history": json.dumps(self.history_.get(u, {}))}
                _atomic_save_tensors(self._states[u], tmp / "users" /
                                     f"{_user_key(u)}.safetensors", meta)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return swap_in_dir(tmp, path)

    def _require_fitted(self) -> None:
        if not hasattr(self, "_states"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")

    def _predict(self, X, *, users=None, return_var: bool = False, prompts=None):
        """Predicted mean (and variance for ``kind="prob"``) for each row.

        Parameters
        ----------
        X : pandas.DataFrame or sequence of str
            Rows of any split; each row is scored by its own user's model.
        users : array-like, optional
            User id per text when ``X`` is a sequence.
        return_var : bool, default False
            Also return the predicted variance (``kind="prob"`` only).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        """
        if not hasattr(self, "_states"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")
        if return_var and self.kind != "prob":
            raise ConfigError("return_var=True needs kind='prob'; det models have no variance")
        texts, _, users, _, _ = self._unpack(X, users=users, need_y=False)
        prompts = self._table_prompts(X, prompts, len(texts))
        unknown = sorted(set(users.tolist()) - set(self._states))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}: no trained reward model for user(s) {unknown[:5]}; "
                "fit on a table that has train rows for them (det/prob have no adapt()), or "
                "score them with the population model (kind 'global')"
            )
        mu = np.empty(len(texts))
        var = np.empty(len(texts)) if self.kind == "prob" else None
        ids = self._tokenize(texts, prompts)
        for u in dict.fromkeys(users.tolist()):
            rows = np.flatnonzero(users == u)
            self._load_tensors(self._states[u])
            m, v = self._infer([ids[i] for i in rows], desc=f"{self.kind} RM {u} score")
            mu[rows] = m
            if var is not None:
                var[rows] = v
        return (mu, var) if return_var else mu

    @classmethod
    def load(cls, output_dir: str | os.PathLike, *, backbone: str | None = None,
             device: str | None = None, **overrides: Any) -> UserRewardModels:
        """Load every user's adapter + head from a fit's ``output_dir``.

        Parameters
        ----------
        output_dir : path-like
        backbone, device : str, optional
            Overrides of the saved settings.
        """
        out = Path(output_dir)
        f = out / CONFIG_NAME
        if not f.exists():
            raise FileNotFoundError(f"{f} not found; is {out} a UserRewardModels output_dir?")
        cfg = read_config(out)
        params = {**dict(cfg["params"]), **overrides}
        params = {k: v for k, v in params.items() if k in cls._param_names()}
        params["output_dir"] = str(out)
        if cls is not UserRewardModels:
            cls = USER_CLASSES.get(params.get("kind"), cls)
        if backbone is not None:
            params["backbone"] = backbone
        if device is not None:
            params["device"] = device
        obj = cls(**params)
        obj._check_kind()
        obj._build(two_heads=(obj.kind == "prob"))
        obj._states, obj.history_ = {}, {}
        files = sorted((out / "users").glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no user models under {out / 'users'}")
        for fu in files:
            st, hist = _read_user_file(fu)
            uid = hist.pop("_user_id")
            obj._states[uid] = st
            obj.history_[uid] = hist
        obj.users_ = list(obj._states)
        return obj


def _read_user_file(f: Path) -> tuple[dict, dict]:
    from ._util import load_tensors

    tensors, meta = load_tensors(f)  # a damaged file: CorruptFileError naming it
    hist = json.loads(meta.get("history", "{}"))
    hist["_user_id"] = meta.get("user_id")
    return tensors, hist


@register("det")
class DetUserRewardModels(UserRewardModels):
    """Registry entry ``det``: :class:`UserRewardModels` with ``kind="det"`` (MSE + contrastive)."""

    def __init__(self, backbone: str | None = None, *, kind: str = "det", **kwargs: Any):
        super().__init__(kind, backbone, **kwargs)


@register("prob")
class ProbUserRewardModels(UserRewardModels):
    """Registry entry ``prob``: :class:`UserRewardModels` with ``kind="prob"`` (Gaussian NLL),
    writing ``score_prob`` (the mean) and ``var_prob``."""

    def __init__(self, backbone: str | None = None, *, kind: str = "prob", **kwargs: Any):
        super().__init__(kind, backbone, **kwargs)


USER_CLASSES: dict[str, type[UserRewardModels]] = {"det": DetUserRewardModels,
                                                   "prob": ProbUserRewardModels}
