"""P-DPO: personalized direct preference optimisation (Li et al., 2024), as a reward.

Implemented: the policy is a causal LM with LoRA (as :class:`.genarm.GenARM`) plus one
learned *user token* per user, a vector in the input-embedding space put in front of the
input; the reference policy is the same LM without LoRA and without the user token.
Training is DPO on the training users' pairs: Bradley-Terry on the implicit rewards
``r_u(y) = beta * (log pi_theta(y | u, x) - log pi_ref(y | x))`` over the response tokens.
An adaptation user fits only their user token on their support pairs (LoRA frozen; at most
``max_support_pairs`` seeded pairs per user); an unknown user gets the mean user token.
``score(texts, users)`` returns the implicit reward, so the diagnostics and the evaluation
suite read P-DPO like any reward model; the policy itself is ``pi_theta(. | u)``.

Departures: Li et al. combine a generic and a user-specific component and train the full
model; here the generic part is the LoRA (rank 8) shared by all users and the user-specific
part is one soft token; the reference log-probabilities are computed once per distinct text
and reused (they do not change); on CPU the training set is capped at ``max_train_pairs``.

Cost: scoring needs one policy pass per (user, text) and one reference pass per distinct
text, about twice GenARM's. On the demo's 10 users (the old ``scripts/zoo_run.py``, trained
with the query id as prompt and scored without one, issue 20 defect 1: 400 training
pairs, 2 adaptation epochs over 32 support pairs per new user, SmolLM2-135M, one thread on
a 2-core CPU shared with other jobs, load ~5) training took 570 s and scoring 1,602 rows
224 s; the DPO loss fell from 0.71 to 0.51 and held-out pair accuracy is 0.60.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

from ._util import NotFittedError, _torch, load_tensors
from .base import register
from .genarm import GenARM
from .losses import bt_loss
from .tables import check_pairs

__all__ = ["PDPO"]


@register("pdpo")
class PDPO(GenARM):
    """Personalized DPO with a user token (see the module docstring).

    Parameters
    ----------
    beta : float, default 0.1
        DPO temperature.
    adapt_epochs : int, default 4
        Epochs over an adaptation user's support pairs (user token only).
    adapt_lr : float, default 5e-3
        Learning rate of the adaptation users' tokens.
    max_support_pairs : int or None, default 64
        Support pairs per adaptation user (seeded subset).
    **kwargs
        :class:`.genarm.GenARM` settings.

    Examples
    --------
    >>> from ttp_diag.gen.reward_models import PDPO
    >>> PDPO(adapt_epochs=2).get_params()["adapt_epochs"]
    2
    """

    personalized = True

    def __init__(self, backbone: str | None = None, *, beta: float = 0.1,
                 adapt_epochs: int = 4, adapt_lr: float = 5e-3,
                 max_support_pairs: int | None = 64, **kwargs: Any):
        super().__init__(backbone, beta=beta, **kwargs)
        self.adapt_epochs = adapt_epochs
        self.adapt_lr = adapt_lr
        self.max_support_pairs = max_support_pairs

    # --- forward passes -------------------------------------------------------------------
    def _hidden(self, batch):
        """Hidden states with the current users' tokens in front, that position dropped."""
        torch = _torch()
        if getattr(self, "_cur_u", None) is None:  # reference pass (LoRA disabled too)
            return super()._hidden(batch)
        inp, att = self._inputs(batch)
        emb = self._lm.get_input_embeddings()(inp)
        utok = self._users_emb[self._cur_u].unsqueeze(1).to(emb.dtype)
        x = torch.cat([utok, emb], 1)
        a = torch.cat([torch.ones_like(att[:, :1]), att], 1)
        return self._body(inputs_embeds=x, attention_mask=a).last_hidden_state[:, 1:]

    def _policy_logp(self, batch, u):
        self._cur_u = u
        try:
            return self._response_logp(batch)[1]
        finally:
            self._cur_u = None

    def _ref_logps(self, encoded) -> np.ndarray:
        """Reference log pi_ref(y | x) of each encoded text, one pass per distinct text."""
        torch = _torch()
        keys = [tuple(x) + (-n,) for x, n in encoded]
        uniq = list(dict.fromkeys(keys))
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        enc = [encoded[first[k]] for k in uniq]
        val = np.empty(len(enc))
        with torch.inference_mode(), self._lm.disable_adapter():
            for b in self._batches(enc, int(self.score_batch_size)):
                val[b] = self._response_logp([enc[i] for i in b])[1].double().cpu().numpy()
        at = {k: i for i, k in enumerate(uniq)}
        return np.array([val[at[k]] for k in keys])

    # --- fit ------------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text",
            prompt_col: str | None = None) -> PDPO:
        """Train on a pairs DataFrame: ``"train"`` pairs (LoRA + user tokens of training
        users), then :meth:`adapt` on the ``"support"`` pairs of other users (their user
        token only). Users with neither get the mean user token (``fallback_users_``)."""
        if self.length_norm:
            # inherited from GenARM's constructor, but P-DPO's reward is the DPO implicit
            # reward (a sum of policy/reference log-ratios); averaging it is not implemented
            raise ConfigError("PDPO does not implement length_norm=True (its reward is the "
                              "summed DPO log-ratio); use length_norm=False")
        torch = _torch()
        if not {"chosen", "rejected"} <= set(data.columns):
            return self.fit_table(data, text_col=text_col, prompt_col=prompt_col)
        pairs = check_pairs(data, "PDPO")
        tr = self._prepare_pairs(pairs, "PDPO")
        rng = np.random.default_rng(int(self.seed))
        if self.max_train_pairs is not None and len(tr) > self.max_train_pairs:
            tr = tr.iloc[np.sort(rng.choice(len(tr), int(self.max_train_pairs), replace=False))]
        train_users = list(dict.fromkeys(tr["user_id"].astype(str)))
        self.users_ = train_users
        self.n_train_users_ = len(train_users)
        self.adapted_users_: list[str] = []
        self.fallback_users_: list[str] = []
        self._build()
        emb_w = self._lm.get_input_embeddings().weight
        g = torch.Generator().manual_seed(int(self.seed))
        self._emb_scale = float(emb_w.detach().std())
        self._users_emb = torch.nn.Parameter(
            (torch.randn(len(self.users_), emb_w.shape[1], generator=g)
             * self._emb_scale).to(self._dev))
        lora = [p for p in self._lm.parameters() if p.requires_grad]
        losses = self._run(tr, lora + [self._users_emb], int(self.epochs), float(self.lr), rng)
        self._lm.eval()
        self.history_ = {"losses": losses, "adapt_losses": [], "n_pairs": int(len(tr)),
                         "n_support_pairs": 0}
        sup = pairs[(pairs["split"] == "support") & ~pairs["user_id"].astype(str).isin(train_users)]
        if len(sup):
            self.adapt(sup)
        self.fallback_users_ = [x for x in dict.fromkeys(pairs["user_id"].astype(str))
                                if x not in self.users_]
        return self

    def adapt(self, support_pairs: pd.DataFrame, user: str | None = None) -> PDPO:
        """Fit the user token of each user in ``support_pairs`` (or only ``user``) on their
        pairs (at most ``max_support_pairs`` seeded pairs each); the LoRA, the reference and
        every other user's token stay bit-identical. A user with no pair keeps the mean
        user token and is listed in ``fallback_users_``.

        Returns
        -------
        self
        """
        torch = _torch()
        if not hasattr(self, "_users_emb") or not hasattr(self, "history_"):
            raise NotFittedError("PDPO is not fitted; fit() before adapt()")
        sup = check_pairs(support_pairs, "PDPO.adapt")
        if user is not None:
            sup = sup[sup["user_id"].astype(str) == str(user)]
            if sup.empty:
                if str(user) not in self.users_ and str(user) not in self.fallback_users_:
                    self.fallback_users_.append(str(user))
                return self
        if sup.empty:
            return self
        rng = np.random.default_rng(int(self.seed) + len(self.users_))
        if self.max_support_pairs is not None:
            keep_rows = []
            for _, pos in sup.groupby(sup["user_id"].astype(str), sort=False).indices.items():
                k = min(len(pos), int(self.max_support_pairs))
                keep_rows.extend(np.sort(rng.choice(pos, k, replace=False)))
            sup = sup.iloc[np.sort(keep_rows)]
        who = list(dict.fromkeys(sup["user_id"].astype(str)))
        new = [x for x in who if x not in self.users_]
        if new:
            g = torch.Generator().manual_seed(int(self.seed) + len(self.users_))
            d = self._users_emb.shape[1]
            scale = getattr(self, "_emb_scale", float(self._users_emb.detach().std()))
            add = (torch.randn(len(new), d, generator=g) * scale).to(self._users_emb)
            self._users_emb = torch.nn.Parameter(torch.cat([self._users_emb.detach(), add]))
            self.users_ = list(self.users_) + new
        idx = {x: i for i, x in enumerate(self.users_)}
        frozen = np.setdiff1d(np.arange(len(self.users_)), [idx[x] for x in who])
        lora = [p for p in self._lm.parameters() if p.requires_grad]
        for p in lora:
            p.requires_grad_(False)
        try:
            losses = self._run(sup, [self._users_emb], int(self.adapt_epochs),
                               float(self.adapt_lr), rng, frozen=frozen)
        finally:
            for p in lora:
                p.requires_grad_(True)
        self._lm.eval()
        self.history_["adapt_losses"] = list(self.history_.get("adapt_losses", [])) + losses
        self.history_["n_support_pairs"] = int(self.history_.get("n_support_pairs", 0)) + len(sup)
        self.adapted_users_ = list(dict.fromkeys([*getattr(self, "adapted_users_", []), *who]))
        self.fallback_users_ = [x for x in getattr(self, "fallback_users_", []) if x not in who]
        return self

    def _run(self, pairs, params, epochs, lr, rng, frozen: np.ndarray | None = None):
        torch = _torch()
        idx = {x: i for i, x in enumerate(self.users_)}
        prompts = self._prompts(pairs)
        c = self._encode(pairs["chosen"].tolist(), prompts)
        r = self._encode(pairs["rejected"].tolist(), prompts)
        ref_c, ref_r = (torch.as_tensor(self._ref_logps(e), dtype=torch.float32,
                                        device=self._dev) for e in (c, r))
        u = torch.as_tensor([idx[str(x)] for x in pairs["user_id"]], device=self._dev)
        fz = None if frozen is None or not len(frozen) else torch.as_tensor(frozen)
        keep = None if fz is None else self._users_emb.detach()[fz].clone()
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        bs = int(self.batch_size)
        beta = float(self.beta)
        losses = []
        self._lm.train()
        from tqdm.auto import tqdm

        for ep in range(epochs):
            order = rng.permutation(len(c))
            for s in tqdm(range(0, len(order), bs), desc=f"P-DPO epoch {ep + 1}/{epochs}",
                          disable=not self.verbose, leave=False):
                b = order[s:s + bs]
                bt = torch.as_tensor(b, device=self._dev)
                lp = self._policy_logp([c[i] for i in b] + [r[i] for i in b],
                                       torch.cat([u[bt], u[bt]]))
                loss = bt_loss(beta * (lp[: len(b)] - ref_c[bt]),
                               beta * (lp[len(b):] - ref_r[bt]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if keep is not None:  # only the adapted users' tokens move
                    with torch.no_grad():
                        self._users_emb[fz] = keep
                losses.append(float(loss.detach()))
        return losses

    # --- score ----------------------------------------------------------------------------
    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        """Implicit DPO reward of each text (response) for its user, after its prompt; a user
        without a token (``fallback_users_``, or unknown) gets the training users' mean token."""
        torch = _torch()
        if not hasattr(self, "_users_emb") or not hasattr(self, "history_"):
            raise NotFittedError("PDPO is not fitted; call fit() or load() first")
        if users is None:
            raise ConfigError("PDPO.score needs users= (one id per text)")
        texts = [str(t) for t in texts]
        users = [str(x) for x in users]
        if len(users) != len(texts):
            raise ConfigError(f"PDPO.score: {len(users)} users for {len(texts)} texts; pass "
                              "one user id per text")
        idx = {x: i for i, x in enumerate(self.users_)}
        enc = self._encode(texts, None if prompts is None else [str(p) for p in prompts])
        ref = self._ref_logps(enc)
        keys = [(users[i], tuple(x), n) for i, (x, n) in enumerate(enc)]
        uniq = list(dict.fromkeys(keys))
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        u_all = np.array([idx.get(k[0], len(self.users_)) for k in uniq])
        enc_u = [enc[first[k]] for k in uniq]
        pol = np.empty(len(uniq))
        saved = self._users_emb
        from tqdm.auto import tqdm

        with torch.inference_mode():
            self._users_emb = torch.cat([saved, saved[: self.n_train_users_].mean(0, keepdim=True)])
            try:
                for b in tqdm(list(self._batches(enc_u, int(self.score_batch_size))),
                              desc="P-DPO score", disable=not self.verbose, leave=False):
                    ub = torch.as_tensor(u_all[b], device=self._dev)
                    pol[b] = self._policy_logp([enc_u[i] for i in b], ub).double().cpu().numpy()
            finally:
                self._users_emb = saved
        at = {k: i for i, k in enumerate(uniq)}
        return float(self.beta) * (np.array([pol[at[k]] for k in keys]) - ref)

    def token_rewards(self, texts, *, prompts=None):  # pragma: no cover - not defined here
        raise NotImplementedError("PDPO gives sequence-level implicit rewards only")

    # --- persistence ----------------------------------------------------------------------
    def _save_extra(self, folder) -> None:
        from ._util import _atomic_save_tensors

        _atomic_save_tensors({"user_tokens": self._users_emb}, folder / "users.safetensors",
                             {"kind": self.name})
        (folder / "users.json").write_text(json.dumps(
            {"users": self.users_, "n_train_users": self.n_train_users_,
             "adapted_users": self.adapted_users_, "fallback_users": self.fallback_users_}))

    def _load_extra(self, folder) -> None:
        torch = _torch()
        info = json.loads((folder / "users.json").read_text())
        if isinstance(info, list):  # saved before adapt() existed
            info = {"users": info, "n_train_users": len(info)}
        self.users_ = list(info["users"])
        self.n_train_users_ = int(info["n_train_users"])
        self.adapted_users_ = list(info.get("adapted_users", []))
        self.fallback_users_ = list(info.get("fallback_users", []))
        st, _ = load_tensors(folder / "users.safetensors")  # a damaged file: named error
        self._users_emb = torch.nn.Parameter(st["user_tokens"].to(self._dev))
