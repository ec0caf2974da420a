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
:meth:`FeatureRewardModel.adapt` is the same step as a public call: ``adapt(support_pairs,
user)`` adds the user's rows to the per-user tensors and fits them with every shared
parameter (and every other user's row) bit-identical. A user seen in the data without any
usable pair (none above ``min_gap``, or no support pair) is scored by the *population
model*, the mean of the training users' rewards, and listed in ``fallback_users_``
(adapted users in ``adapted_users_``).

Prompt and response are separate: pairs carry ``prompt`` (the context) and the responses;
features are computed on ``(prompt, response)`` with the prompt cut from the left
(:mod:`.features`), and :meth:`FeatureRewardModel.score` takes ``prompts=``.

Features are standardised (mean and standard deviation of the items of the training pairs
only; support, query and scored items never enter) before the heads.
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

from ttp_diag.exceptions import ConfigError, ConfigTypeError, ScoreTableError

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
from .tables import check_pairs, pair_prompts, pairs_from_pools

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

    Attributes
    ----------
    users_ : list of str
        Users with parameters: the training users, then the adapted users.
    n_train_users_ : int
    adapted_users_ : list of str
        Users fitted by :meth:`adapt` (shared parameters frozen).
    fallback_users_ : list of str
        Users seen without a usable pair, scored by the population model (the mean of the
        training users' rewards).
    feat_mean_, feat_std_ : numpy.ndarray
        Standardisation from the training pairs' items only.
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
        """Fit the rows ``adapt_idx`` of the user-specific parameters on the pairs given;
        every other row and every shared parameter is left bit-identical."""
        torch = _torch()
        named = [(n, p) for n, p in module.named_parameters() if n.startswith("user_")]
        if not named or not len(c):
            return
        keep = {n: p.detach().clone() for n, p in named}
        self._loop(module, X, c, r, u, None, [p for _, p in named], self.adapt_epochs,
                   self.adapt_lr, full_batch=True)
        other = np.setdiff1d(np.arange(len(self.users_)), np.asarray(adapt_idx, np.int64))
        with torch.no_grad():  # weight decay must not move the other users' parameters
            for n, p in named:
                p[other] = keep[n][other]

    # --- encoding -------------------------------------------------------------------------
    def _encoder(self):
        from .features import FeatureEncoder

        return FeatureEncoder(self.backbone, max_length=self.max_length)

    def _features(self, texts: Sequence[str], prompts: Sequence[str] | None = None):
        return self._encoder().encode(list(texts), self.pooling, prompts=prompts)

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

    def _standardise_on(self, F, items: np.ndarray) -> None:
        """Feature mean and sd from the training items only (never support or query items)."""
        items = np.unique(np.asarray(items, np.int64))
        if isinstance(F, list):
            flat = np.concatenate([np.asarray(F[i], np.float32) for i in items])
        else:
            flat = np.asarray(F, np.float32)[items]
        self.feat_mean_ = flat.mean(0)
        self.feat_std_ = flat.std(0) + 1e-6

    # --- training -------------------------------------------------------------------------
    def _loop(self, module, X, c, r, u, y, params, epochs, lr, full_batch=False) -> None:
        """Adam over pairs (``y is None``: Bradley-Terry) or labelled items (MSE)."""
        torch = _torch()
        opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(int(self.seed))
        n = len(c)
        bs = n if full_batch else min(n, int(self.batch_size))
        module.train()
        for _ in range(int(epochs)):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, bs):
                b = perm[s:s + bs]
                self._step(module, opt, X, c[b], r[b], u[b], None if y is None else y[b])
        module.eval()

    def _step(self, module, opt, X, c, r, u, y) -> None:
        """One optimiser step on one batch (Bradley-Terry, or MSE with labels ``y``)."""
        from .losses import bt_loss

        if y is None:
            loss = bt_loss(module.reward(self._take(X, c), u), module.reward(self._take(X, r), u))
        else:
            loss = ((module.reward(self._take(X, c), u) - y) ** 2).mean()
        loss = loss + module.penalty() if hasattr(module, "penalty") else loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

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
            ``"train"`` / ``"support"`` / other per pair (default all ``"train"``). Training
            users' ``"train"`` pairs train the model; then :meth:`adapt_features` fits each
            other user with ``"support"`` pairs; users with neither are scored by the
            population model (listed in ``fallback_users_``).
        labels : array, optional
            Real-valued labels of the ``chosen`` items for ``loss="mse"``.

        Returns
        -------
        self
        """
        torch = _torch()
        torch.manual_seed(int(self.seed))
        if self.loss not in ("bt", "mse"):
            raise ConfigError(f"loss={self.loss!r}; use 'bt' or 'mse'")
        users = np.asarray([str(x) for x in users])
        chosen = np.asarray(chosen, np.int64)
        rejected = np.asarray(rejected if rejected is not None else chosen, np.int64)
        split = np.full(len(users), "train", object) if split is None else np.asarray(split)
        tr = split == "train"
        if not tr.any():
            raise ScoreTableError("no training pairs (split == 'train'); nothing to fit")
        train_users = list(dict.fromkeys(users[tr].tolist()))
        sup = (split == "support") & ~np.isin(users, train_users)
        self.users_ = train_users
        self.n_train_users_ = len(train_users)
        self.adapted_users_: list[str] = []
        self.fallback_users_: list[str] = []
        uidx = {x: i for i, x in enumerate(self.users_)}
        self._standardise_on(F, np.concatenate([chosen[tr], rejected[tr]]))
        X = self._as_tensor(F)
        d = int(self.feat_mean_.shape[0])
        self.n_features_ = d
        module = self._build(d, len(self.users_), len(train_users)).to(self.device)
        t = lambda a: torch.as_tensor(np.array(a), device=self.device)  # noqa: E731
        u_tr = t(np.array([uidx[x] for x in users[tr]]))
        c_t, r_t = t(chosen[tr]), t(rejected[tr])
        y = None if labels is None else t(np.asarray(labels, np.float32)[tr])
        if y is not None and self.loss != "mse":
            raise ConfigError("labels given but loss='bt'; pass loss='mse' for pointwise labels")
        self._init_from_data(module, X, c_t, r_t, u_tr)
        self._train_shared(module, X, c_t, r_t, u_tr, y)
        self.module_ = module
        if sup.any():
            self.adapt_features(F, chosen[sup], rejected[sup], users[sup])
        rest = [x for x in dict.fromkeys(users.tolist()) if x not in self.users_]
        self._mark_fallback(rest)
        return self

    # --- adaptation (second paper, section 3.1) -------------------------------------------
    def _mark_fallback(self, users) -> None:
        """Users without trainable pairs: scored by the population model (personalized
        families only; see :meth:`score_features`)."""
        if not self.personalized:
            return
        for x in map(str, users):
            if x not in self.users_ and x not in self.fallback_users_:
                self.fallback_users_.append(x)

    def _grow(self, new_users: list[str]) -> None:
        """Add rows for ``new_users`` to every per-user tensor; all else is copied."""
        torch = _torch()
        n_old = len(self.users_)
        n_new = n_old + len(new_users)
        old = self.module_.state_dict()
        module = self._build(self.n_features_, n_new, self.n_train_users_).to(self.device)
        st = module.state_dict()
        with torch.no_grad():
            for k, v in old.items():
                w = st[k]
                if v.shape == w.shape:
                    w.copy_(v)
                elif v.shape[0] == n_old and w.shape[0] == n_new:
                    w[:n_old] = v
                elif v.shape[0] == n_old + 1 and w.shape[0] == n_new + 1:  # a last prior row
                    w[:n_old] = v[:n_old]
                    w[-1] = v[-1]
                else:  # pragma: no cover - a family whose tensors do not follow the layout
                    raise RuntimeError(f"{type(self).__name__}: cannot add users to {k!r} "
                                       f"of shape {tuple(v.shape)}")
        module.load_state_dict(st)
        self.module_ = module.eval()
        self.users_ = list(self.users_) + list(new_users)

    def adapt_features(self, F, chosen, rejected, users) -> FeatureRewardModel:
        """Fit the user-specific parameters of ``users``' on their support pairs (features
        given directly); shared parameters and every other user stay bit-identical.

        A user with no pair is scored by the population model (``fallback_users_``).

        Returns
        -------
        self
        """
        torch = _torch()
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; fit() before adapt()")
        users = np.asarray([str(x) for x in users])
        if not len(users):
            return self
        who = list(dict.fromkeys(users.tolist()))
        if self.personalized:
            new = [x for x in who if x not in self.users_]
            if new:
                self._grow(new)
        idx = {x: i for i, x in enumerate(self.users_)}
        if self.personalized:
            X = self._as_tensor(F)
            t = lambda a: torch.as_tensor(np.asarray(a), device=self.device)  # noqa: E731
            self._adapt(self.module_, X, t(np.asarray(chosen, np.int64)),
                        t(np.asarray(rejected, np.int64)), t([idx[x] for x in users]),
                        np.array([idx[x] for x in who]), self.n_train_users_)
            self.module_.eval()
        self.adapted_users_ = list(dict.fromkeys([*getattr(self, "adapted_users_", []), *who]))
        self.fallback_users_ = [x for x in getattr(self, "fallback_users_", []) if x not in who]
        return self

    def adapt(self, support_pairs: pd.DataFrame, user: str | None = None) -> FeatureRewardModel:
        """Adapt to a new user from their support pairs only (second paper, section 3.1).

        Only the user-specific parameters (names starting with ``user_``) of ``user`` are
        fitted; shared parameters and every other user's parameters stay bit-identical.
        Non-personalized families have nothing to adapt and return unchanged.

        Parameters
        ----------
        support_pairs : pandas.DataFrame
            Pairs (``user_id, split, prompt, chosen, rejected, source``); every row is used
            whatever its ``split`` (pass the support set only).
        user : str, optional
            Keep only this user's rows (default: every user in ``support_pairs``). A user
            with no row is scored by the population model and listed in
            ``fallback_users_``.

        Returns
        -------
        self
        """
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; fit() before adapt()")
        pairs = check_pairs(support_pairs, f"{type(self).__name__}.adapt")
        if user is not None:
            pairs = pairs[pairs["user_id"].astype(str) == str(user)]
            if pairs.empty:
                self._mark_fallback([user])
                return self
        if pairs.empty:
            return self
        F, c, r = self._pair_items(pairs)
        return self.adapt_features(F, c, r, pairs["user_id"].astype(str).to_numpy())

    def _pair_items(self, pairs: pd.DataFrame):
        """Features of the distinct (prompt, response) items of ``pairs`` and the item
        index of each pair's chosen and rejected side."""
        prompts = pair_prompts(pairs)
        cc, rr = pairs["chosen"].astype(str).tolist(), pairs["rejected"].astype(str).tolist()
        if prompts is None:
            keys_c, keys_r = cc, rr
        else:
            keys_c, keys_r = list(zip(prompts, cc, strict=True)), list(zip(prompts, rr,
                                                                           strict=True))
        items = list(dict.fromkeys(keys_c + keys_r))
        pos = {k: i for i, k in enumerate(items)}
        if prompts is None:
            F = self._features(items)
        else:
            F = self._features([k[1] for k in items], [k[0] for k in items])
        return (F, np.array([pos[k] for k in keys_c], np.int64),
                np.array([pos[k] for k in keys_r], np.int64))

    # --- public contract ------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text",
            prompt_col: str | None = None) -> FeatureRewardModel:
        """Train from a pairs DataFrame (``user_id, split, prompt, chosen, rejected,
        source``: ``prompt`` is the context, ``chosen``/``rejected`` the responses; an
        all-empty ``prompt`` means no context) or from a labelled candidate table (pairs
        built from its train-split pools; with ``loss="mse"`` the labels are used
        pointwise).

        Pairs with ``split == "train"`` train the model; other users' ``"support"`` pairs
        adapt it (:meth:`adapt`); users with neither get the population model.

        Returns
        -------
        self
        """
        if not isinstance(data, pd.DataFrame):
            raise ConfigTypeError("fit takes a pairs DataFrame or a labelled candidate table")
        if {"chosen", "rejected"} <= set(data.columns):
            pairs = check_pairs(data, type(self).__name__)
            use = pairs[pairs["split"].isin(["train", "support"])]
            if not (use["split"] == "train").any():
                raise ScoreTableError("no training pairs (split == 'train'); nothing to fit")
            F, c, r = self._pair_items(use)
            self.fit_features(F, c, r, use["user_id"].to_numpy(), use["split"].to_numpy())
            self._mark_fallback([x for x in dict.fromkeys(pairs["user_id"].astype(str))
                                 if x not in self.users_])
            return self
        return self.fit_table(data, text_col=text_col, prompt_col=prompt_col)

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                  prompt_col: str | None = None) -> FeatureRewardModel:
        """Train on the train split of a labelled candidate table (responses in
        ``text_col``, their context in ``prompt_col`` when given). Users of the train split
        without a pair above ``min_gap`` are scored by the population model and listed in
        ``fallback_users_``."""
        from .tables import train_rows

        cols = ["user_id", "query_id", "reward", text_col] + ([prompt_col] if prompt_col else [])
        tr = train_rows(table, cols, type(self).__name__)
        if self.loss == "mse":
            texts = tr[text_col].astype(str).tolist()
            F = self._features(texts, None if prompt_col is None
                               else tr[prompt_col].astype(str).tolist())
            idx = np.arange(len(texts))
            return self.fit_features(F, idx, None, tr["user_id"].to_numpy(),
                                     labels=tr["reward"].to_numpy(float))
        pairs = pairs_from_pools(tr, text_col=text_col, prompt_col=prompt_col,
                                 min_gap=self.min_gap,
                                 max_pairs_per_query=self.max_pairs_per_query, seed=self.seed)
        if pairs.empty:
            raise ScoreTableError(f"no preference pairs with a reward gap >= {self.min_gap} in the "
                                  "train split; lower min_gap")
        self.fit(pairs)
        self._mark_fallback([x for x in dict.fromkeys(tr["user_id"].astype(str))
                             if x not in self.users_])
        return self

    def _user_index(self, users) -> np.ndarray:
        """Row of each user in ``users_``; -1 for a user scored by the population model."""
        if users is None:
            if self.personalized:
                raise ConfigError(f"{type(self).__name__}.score needs users= (one id per text)")
            return np.zeros(0, np.int64)
        idx = {x: i for i, x in enumerate(self.users_)}
        u = np.array([idx.get(str(x), -1) for x in users], np.int64)
        if self.personalized and (u < 0).any() and not self._has_fallback():
            known = set(getattr(self, "fallback_users_", []))
            bad = sorted({str(x) for x, i in zip(users, u, strict=True)
                          if i < 0 and str(x) not in known})
            if bad:
                raise ConfigError(f"{type(self).__name__}: no parameters for user(s) {bad[:5]} "
                                  "(not in training or adapt()); adapt() to them with their "
                                  "support pairs first, or score them with the population model "
                                  "(a non-personalized family such as 'global_bt')")
        return u

    def _has_fallback(self) -> bool:
        return False

    def score_features(self, F, users=None) -> np.ndarray:
        """Rewards of items with features ``F`` for ``users`` (one id per item); users in
        ``fallback_users_`` get the population model: the mean of the training users'
        rewards."""
        torch = _torch()
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        n = len(F)
        u = self._user_index(users)
        if len(u) == 0:
            u = np.zeros(n, np.int64)
        X = self._as_tensor(F)
        out = np.empty(n)
        pop = self.personalized and not self._has_fallback()
        with torch.no_grad():
            for s in range(0, n, 4096):
                Xb = self._take(X, torch.arange(s, min(n, s + 4096)))
                ub = u[s:s + 4096]
                miss = (ub < 0) if pop else np.zeros(len(ub), bool)
                val = self.module_.reward(Xb, torch.as_tensor(np.where(miss, 0, ub),
                                                              device=self.device))
                val = val.double().cpu().numpy()
                if miss.any():  # the population model: mean of the training users' rewards
                    Xm = self._take(Xb, torch.as_tensor(np.flatnonzero(miss)))
                    val[miss] = np.mean([self.module_.reward(Xm, torch.full(
                        (int(miss.sum()),), k, device=self.device)).double().cpu().numpy()
                        for k in range(self.n_train_users_)], axis=0)
                out[s:s + 4096] = val
        return out

    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        """One reward per response text for its user (higher is better); ``prompts`` gives
        each text's context (cut from the left to fit ``max_length``)."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        return self.score_features(self._features(list(texts), prompts), users)

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
                   "adapted_users": getattr(self, "adapted_users_", []),
                   "fallback_users": getattr(self, "fallback_users_", []),
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
        obj.adapted_users_ = list(cfg.get("adapted_users", []))
        obj.fallback_users_ = list(cfg.get("fallback_users", []))
        module = obj._build(obj.n_features_, len(obj.users_), obj.n_train_users_)
        module.load_state_dict(st)
        obj.module_ = module.to(obj.device).eval()
        if cfg.get("fit_key"):
            obj.fit_key_ = cfg["fit_key"]
        return obj
