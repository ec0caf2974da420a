"""Shared machinery of the reward-model zoo: small heads trained on cached features.

:class:`FeatureRewardModel` turns training data into preference pairs over cached text
features (see :mod:`.features`) and trains a family's torch module with the Bradley-Terry
loss (or, with ``loss="mse"`` and a labelled table, a pointwise MSE on the labels). A family
subclass only builds its module (``_build``) and says how a reward is computed
(``module.reward(X, u)``); parameters whose names start with ``user_`` are user-specific.

Protocol (second paper, section 3.1): pairs whose ``split`` is ``"train"`` train the shared
and the user-specific parameters of the *training users*; users who have no train pairs but
``"support"`` pairs are *adaptation users*: the shared parameters are frozen and only their
user-specific parameters are fitted on the support pairs (``adapt_epochs``); other splits
(``"query"``, ``"val"``, ...) are never trained on. Everything is seeded by ``seed``.

Features are standardised (training-item mean and standard deviation) before the heads.
Tests call :meth:`FeatureRewardModel.fit_features` / :meth:`score_features` with features
given directly, so no backbone is needed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._util import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    NotFittedError,
    _atomic_save_tensors,
    _atomic_write_json,
    _torch,
    new_save_dir,
    read_config,
    swap_in_dir,
    versions,
)
from .base import RewardModel
from .tables import check_pairs, pairs_from_pools

__all__ = ["FeatureRewardModel"]


class FeatureRewardModel(RewardModel):
    """Base of the zoo families: frozen backbone features + a small trained head.

    Parameters
    ----------
    backbone : str, optional
        Local model directory for the frozen features; default MiniLM (offline).
    epochs : int, default 40
        Passes over the training pairs.
    lr : float, default 5e-3
        Adam learning rate.
    batch_size : int, default 256
    weight_decay : float, default 1e-4
    adapt_epochs : int, default 100
        Steps over an adaptation user's support pairs (user parameters only).
    adapt_lr : float, default 2e-2
    loss : {"bt", "mse"}, default "bt"
        Bradley-Terry on pairs, or (from a labelled table) MSE on the labels.
    min_gap, max_pairs_per_query : float, int
        How pairs are built from candidate pools (:func:`.tables.pairs_from_pools`).
    max_length : int, default 128
    device : str, default "cpu"
        Where the heads train (the backbone follows ``"auto"``).
    seed : int, default 0
    verbose : bool, default False
    """

    pooling: ClassVar[str] = "mean"

    def __init__(self, backbone: str | None = None, *, epochs: int = 40, lr: float = 5e-3,
                 batch_size: int = 256, weight_decay: float = 1e-4, adapt_epochs: int = 100,
                 adapt_lr: float = 2e-2, loss: str = "bt", min_gap: float = 0.1,
                 max_pairs_per_query: int | None = 20, max_length: int = 128,
                 device: str = "cpu", seed: int = 0, verbose: bool = False):
        self.backbone = backbone
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.adapt_epochs = adapt_epochs
        self.adapt_lr = adapt_lr
        self.loss = loss
        self.min_gap = min_gap
        self.max_pairs_per_query = max_pairs_per_query
        self.max_length = max_length
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # --- family hooks ---------------------------------------------------------------------
    def _build(self, d: int, n_users: int, n_train: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _init_from_data(self, module, X, c, r, u) -> None:
        """Optional data-driven initialisation before training (e.g. PReF's SVD)."""

    def _train_shared(self, module, X, c, r, u, w) -> None:
        self._loop(module, X, c, r, u, w, list(module.parameters()), self.epochs, self.lr)

    def _adapt(self, module, X, c, r, u, adapt_idx: np.ndarray, n_train: int) -> None:
        torch = _torch()
        named = [(n, p) for n, p in module.named_parameters() if n.startswith("user_")]
        if not named or not len(c):
            return
        keep = {n: p.detach()[:n_train].clone() for n, p in named}
        self._loop(module, X, c, r, u, None, [p for _, p in named], self.adapt_epochs,
                   self.adapt_lr, full_batch=True)
        with torch.no_grad():  # weight decay must not move the training users' parameters
            for n, p in named:
                p[:n_train] = keep[n]

    # --- encoding -------------------------------------------------------------------------
    def _encoder(self):
        from .features import FeatureEncoder

        return FeatureEncoder(self.backbone, max_length=self.max_length)

    def _features(self, texts: Sequence[str]):
        return self._encoder().encode(list(texts), self.pooling)

    def _as_tensor(self, F):
        """Standardised torch features: (n, d), or (n, T, d) plus a mask for token features."""
        torch = _torch()
        if isinstance(F, list):  # token features, ragged
            T = max(len(f) for f in F)
            d = F[0].shape[1]
            X = np.zeros((len(F), T, d), np.float32)
            M = np.zeros((len(F), T), np.float32)
            for i, f in enumerate(F):
                X[i, :len(f)] = f
                M[i, :len(f)] = 1
            X = (X - self.feat_mean_) / self.feat_std_ * M[..., None]
            return (torch.tensor(X, device=self.device), torch.tensor(M, device=self.device))
        X = (np.asarray(F, np.float32) - self.feat_mean_) / self.feat_std_
        return torch.tensor(X, device=self.device)

    @staticmethod
    def _take(X, idx):
        return (X[0][idx], X[1][idx]) if isinstance(X, tuple) else X[idx]

    # --- training -------------------------------------------------------------------------
    def _loop(self, module, X, c, r, u, y, params, epochs, lr, full_batch=False) -> None:
        """Adam over pairs (``y is None``: Bradley-Terry) or labelled items (MSE)."""
        torch = _torch()
        from .losses import bt_loss

        opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(int(self.seed))
        n = len(c)
        bs = n if full_batch else min(n, int(self.batch_size))
        module.train()
        for _ in range(int(epochs)):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, bs):
                b = perm[s:s + bs]
                if y is None:
                    loss = bt_loss(module.reward(self._take(X, c[b]), u[b]),
                                   module.reward(self._take(X, r[b]), u[b]))
                else:
                    loss = ((module.reward(self._take(X, c[b]), u[b]) - y[b]) ** 2).mean()
                loss = loss + module.penalty() if hasattr(module, "penalty") else loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        module.eval()

    def fit_features(self, F, chosen, rejected, users, split=None, *, labels=None):
        """Train on features given directly (no backbone).

        Parameters
        ----------
        F : array (n_items, d) or list of (T_i, d) arrays (token features)
        chosen, rejected : int arrays, shape (n_pairs,)
            Item indices of each pair; with ``labels`` (pointwise MSE), ``chosen`` lists the
            labelled items and ``rejected`` is ignored.
        users : array, shape (n_pairs,)
            User id of each pair.
        split : array, optional
            ``"train"`` / ``"support"`` / other per pair (default all ``"train"``).
        labels : array, optional
            Real-valued labels of the ``chosen`` items for ``loss="mse"``.

        Returns
        -------
        self
        """
        torch = _torch()
        torch.manual_seed(int(self.seed))
        if self.loss not in ("bt", "mse"):
            raise ValueError(f"loss={self.loss!r}; use 'bt' or 'mse'")
        users = np.asarray([str(x) for x in users])
        chosen = np.asarray(chosen, np.int64)
        rejected = np.asarray(rejected if rejected is not None else chosen, np.int64)
        split = np.full(len(users), "train", object) if split is None else np.asarray(split)
        tr = split == "train"
        if not tr.any():
            raise ValueError("no training pairs (split == 'train'); nothing to fit")
        train_users = list(dict.fromkeys(users[tr].tolist()))
        sup = (split == "support") & ~np.isin(users, train_users)
        adapt_users = list(dict.fromkeys(users[sup].tolist()))
        self.users_ = train_users + adapt_users
        self.n_train_users_ = len(train_users)
        uidx = {x: i for i, x in enumerate(self.users_)}
        flat = np.concatenate(F) if isinstance(F, list) else np.asarray(F, np.float32)
        self.feat_mean_ = flat.astype(np.float32).mean(0)
        self.feat_std_ = flat.astype(np.float32).std(0) + 1e-6
        X = self._as_tensor(F)
        d = int(self.feat_mean_.shape[0])
        self.n_features_ = d
        module = self._build(d, len(self.users_), len(train_users)).to(self.device)
        t = lambda a: torch.as_tensor(np.array(a), device=self.device)  # noqa: E731
        u_all = t(np.array([uidx.get(x, -1) for x in users]))
        c_t, r_t = t(chosen), t(rejected)
        trm = t(tr)
        y = None if labels is None else t(np.asarray(labels, np.float32))
        if y is not None and self.loss != "mse":
            raise ValueError("labels given but loss='bt'; pass loss='mse' for pointwise labels")
        self._init_from_data(module, X, c_t[trm], r_t[trm], u_all[trm])
        self._train_shared(module, X, c_t[trm], r_t[trm], u_all[trm],
                           None if y is None else y[trm])
        if adapt_users:
            sm = t(sup)
            self._adapt(module, X, c_t[sm], r_t[sm], u_all[sm],
                        np.arange(len(train_users), len(self.users_)), len(train_users))
        self.module_ = module
        return self

    # --- public contract ------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text") -> FeatureRewardModel:
        """Train from a pairs DataFrame (``user_id, split, prompt, chosen, rejected,
        source``) or from a labelled candidate table (pairs built from its train-split pools;
        with ``loss="mse"`` the labels are used pointwise).

        Returns
        -------
        self
        """
        if not isinstance(data, pd.DataFrame):
            raise TypeError("fit takes a pairs DataFrame or a labelled candidate table")
        if {"chosen", "rejected"} <= set(data.columns):
            pairs = check_pairs(data, type(self).__name__)
            texts = list(dict.fromkeys(pairs["chosen"].tolist() + pairs["rejected"].tolist()))
            pos = {x: i for i, x in enumerate(texts)}
            F = self._features(texts)
            return self.fit_features(F, pairs["chosen"].map(pos).to_numpy(),
                                     pairs["rejected"].map(pos).to_numpy(),
                                     pairs["user_id"].to_numpy(), pairs["split"].to_numpy())
        return self.fit_table(data, text_col=text_col)

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text") -> FeatureRewardModel:
        """Train on the train split of a labelled candidate table."""
        from .tables import train_rows

        tr = train_rows(table, ["user_id", "query_id", "reward", text_col], type(self).__name__)
        if self.loss == "mse":
            texts = tr[text_col].tolist()
            F = self._features(texts)
            idx = np.arange(len(texts))
            return self.fit_features(F, idx, None, tr["user_id"].to_numpy(),
                                     labels=tr["reward"].to_numpy(float))
        pairs = pairs_from_pools(tr, text_col=text_col, min_gap=self.min_gap,
                                 max_pairs_per_query=self.max_pairs_per_query, seed=self.seed)
        if pairs.empty:
            raise ValueError(f"no preference pairs with a reward gap >= {self.min_gap} in the "
                             "train split; lower min_gap")
        return self.fit(pairs)

    def _user_index(self, users) -> np.ndarray:
        if users is None:
            if self.personalized:
                raise ValueError(f"{type(self).__name__}.score needs users= (one id per text)")
            return np.zeros(0, np.int64)
        idx = {x: i for i, x in enumerate(self.users_)}
        u = np.array([idx.get(str(x), -1) for x in users])
        if self.personalized and (u < 0).any() and not self._has_fallback():
            bad = sorted({str(x) for x, i in zip(users, u, strict=True) if i < 0})
            raise KeyError(f"{type(self).__name__}: no parameters for user(s) {bad[:5]}; "
                           "give them train pairs, or support pairs to adapt to them")
        return u

    def _has_fallback(self) -> bool:
        return False

    def score_features(self, F, users=None) -> np.ndarray:
        """Rewards of items with features ``F`` for ``users`` (one id per item)."""
        torch = _torch()
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        n = len(F)
        u = self._user_index(users)
        if len(u) == 0:
            u = np.zeros(n, np.int64)
        X = self._as_tensor(F)
        out = np.empty(n)
        with torch.no_grad():
            for s in range(0, n, 4096):
                b = torch.arange(s, min(n, s + 4096))
                ub = torch.as_tensor(u[s:s + 4096], device=self.device)
                out[s:s + 4096] = self.module_.reward(self._take(X, b), ub).double().cpu().numpy()
        return out

    def score(self, texts: Sequence[str], users: Sequence | None = None) -> np.ndarray:
        """One reward per text for its user (higher is better)."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        return self.score_features(self._features(list(texts)), users)

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write settings, users and head weights to a new folder swapped in by renames."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; nothing to save")
        path = Path(path)
        tmp = new_save_dir(path)
        try:
            cfg = {"kind": self.name, "class": type(self).__name__,
                   "params": json.loads(json.dumps(self.get_params(), default=str)),
                   "users": self.users_, "n_train_users": self.n_train_users_,
                   "n_features": self.n_features_, "fit_key": getattr(self, "fit_key_", None),
                   "versions": versions()}
            _atomic_write_json(cfg, tmp / CONFIG_NAME)
            tensors = dict(self.module_.state_dict())
            torch = _torch()
            tensors["_feat_mean"] = torch.tensor(self.feat_mean_)
            tensors["_feat_std"] = torch.tensor(self.feat_std_)
            _atomic_save_tensors(tensors, tmp / WEIGHTS_NAME, {"kind": self.name})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return swap_in_dir(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> FeatureRewardModel:
        """Rebuild a model written by :meth:`save`."""
        from ._util import load_tensors

        cfg = read_config(Path(path), cls.name)
        params = {**cfg["params"], **overrides}
        obj = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        st, _ = load_tensors(Path(path) / WEIGHTS_NAME)  # a damaged file: named error
        obj.feat_mean_ = st.pop("_feat_mean").numpy()
        obj.feat_std_ = st.pop("_feat_std").numpy()
        obj.users_ = list(cfg["users"])
        obj.n_train_users_ = int(cfg["n_train_users"])
        obj.n_features_ = int(cfg["n_features"])
        module = obj._build(obj.n_features_, len(obj.users_), obj.n_train_users_)
        module.load_state_dict(st)
        obj.module_ = module.to(obj.device).eval()
        if cfg.get("fit_key"):
            obj.fit_key_ = cfg["fit_key"]
        return obj
