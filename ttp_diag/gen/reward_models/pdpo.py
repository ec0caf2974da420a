"""P-DPO: personalized direct preference optimisation (Li et al., 2024), as a reward.

Implemented: the policy is a causal LM with LoRA (as :class:`.genarm.GenARM`) plus one
learned *user token* per user, a vector in the input-embedding space inserted after the
first token; the reference policy is the same LM without LoRA and without the user token.
Training is DPO on the training users' pairs: Bradley-Terry on the implicit rewards
``r_u(y) = beta * (log pi_theta(y | u) - log pi_ref(y))``. An adaptation user fits only their
user token on their support pairs (LoRA frozen); an unknown user gets the mean user token.
``score(texts, users)`` returns the implicit reward, so the diagnostics and the evaluation
suite read P-DPO like any reward model; the policy itself is ``pi_theta(. | u)``.

Departures: Li et al. combine a generic and a user-specific component and train the full
model; here the generic part is the LoRA (rank 8) shared by all users, the user-specific
part is one soft token, and the prompt and response are not separated (as in GenARM).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._util import NotFittedError, _torch
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
    adapt_epochs : int, default 20
    **kwargs
        :class:`.genarm.GenARM` settings.
    """

    personalized = True

    def __init__(self, backbone: str | None = None, *, beta: float = 0.1,
                 adapt_epochs: int = 20, **kwargs: Any):
        super().__init__(backbone, beta=beta, **kwargs)
        self.adapt_epochs = adapt_epochs

    def _user_logp(self, ids, u):
        torch = _torch()
        width = max(len(x) for x in ids)
        inp = torch.full((len(ids), width), int(self._tok.pad_token_id or 0), dtype=torch.long)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            inp[i, : len(x)] = torch.as_tensor(x)
            att[i, : len(x)] = 1
        inp, att = inp.to(self._dev), att.to(self._dev)
        emb = self._lm.get_input_embeddings()(inp)
        utok = self._users_emb[u].unsqueeze(1).to(emb.dtype)
        x = torch.cat([emb[:, :1], utok, emb[:, 1:]], 1)
        a = torch.cat([att[:, :1], torch.ones_like(att[:, :1]), att[:, 1:]], 1)
        logits = self._lm(inputs_embeds=x, attention_mask=a).logits[:, 1:-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, inp[:, 1:, None]).squeeze(-1)
        return (lp * att[:, 1:].to(lp.dtype)).sum(-1)

    def _ref_logp(self, ids):
        torch = _torch()
        with torch.no_grad(), self._lm.disable_adapter():
            lp, m = self._token_logp(ids)
        return (lp * m).sum(-1)

    def _implicit(self, ids, u, ref=None):
        ref = self._ref_logp(ids) if ref is None else ref
        return float(self.beta) * (self._user_logp(ids, u) - ref)

    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text") -> PDPO:
        """Train on a pairs DataFrame: ``"train"`` pairs (LoRA + user tokens of training
        users), then ``"support"`` pairs of other users (their user token only)."""
        torch = _torch()
        if not {"chosen", "rejected"} <= set(data.columns):
            return self.fit_table(data, text_col=text_col)
        pairs = check_pairs(data, "PDPO")
        tr = pairs[pairs["split"] == "train"]
        if tr.empty:
            raise ValueError("PDPO: no pairs with split == 'train'")
        rng = np.random.default_rng(int(self.seed))
        if self.max_train_pairs is not None and len(tr) > self.max_train_pairs:
            tr = tr.iloc[np.sort(rng.choice(len(tr), int(self.max_train_pairs), replace=False))]
        train_users = list(dict.fromkeys(tr["user_id"].astype(str)))
        sup = pairs[(pairs["split"] == "support") & ~pairs["user_id"].astype(str).isin(train_users)]
        self.users_ = train_users + list(dict.fromkeys(sup["user_id"].astype(str)))
        self._build()
        hidden = self._lm.get_input_embeddings().weight.shape[1]
        g = torch.Generator().manual_seed(int(self.seed))
        scale = float(self._lm.get_input_embeddings().weight.detach().std())
        self._users_emb = torch.nn.Parameter(
            (torch.randn(len(self.users_), hidden, generator=g) * scale).to(self._dev))
        lora = [p for p in self._lm.parameters() if p.requires_grad]
        losses = self._run(tr, lora + [self._users_emb], int(self.epochs), rng, losses=[])
        if len(sup):
            self._run(sup, [self._users_emb], int(self.adapt_epochs), rng, losses=[],
                      only=len(train_users))
        self._lm.eval()
        self.history_ = {"losses": losses, "n_pairs": int(len(tr))}
        return self

    def _run(self, pairs, params, epochs, rng, losses, only: int | None = None):
        torch = _torch()
        idx = {x: i for i, x in enumerate(self.users_)}
        c_ids, r_ids = self._ids(pairs["chosen"].tolist()), self._ids(pairs["rejected"].tolist())
        u = torch.as_tensor([idx[str(x)] for x in pairs["user_id"]], device=self._dev)
        keep = None if only is None else self._users_emb.detach()[:only].clone()
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        bs = int(self.batch_size)
        self._lm.train()
        from tqdm.auto import tqdm

        for ep in range(epochs):
            order = rng.permutation(len(c_ids))
            for s in tqdm(range(0, len(order), bs), desc=f"P-DPO epoch {ep + 1}/{epochs}",
                          disable=not self.verbose, leave=False):
                b = order[s:s + bs]
                ub = u[torch.as_tensor(b, device=self._dev)]
                loss = bt_loss(self._implicit([c_ids[i] for i in b], ub),
                               self._implicit([r_ids[i] for i in b], ub))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        if keep is not None:
            with torch.no_grad():
                self._users_emb[:only] = keep
        return losses

    def score(self, texts: Sequence[str], users: Sequence | None = None) -> np.ndarray:
        """Implicit DPO reward of each text for its user (mean user token if unknown)."""
        torch = _torch()
        if not hasattr(self, "_users_emb") or not hasattr(self, "history_"):
            raise NotFittedError("PDPO is not fitted; call fit() or load() first")
        if users is None:
            raise ValueError("PDPO.score needs users= (one id per text)")
        texts = list(texts)
        idx = {x: i for i, x in enumerate(self.users_)}
        n_u = len(self.users_)
        u = np.array([idx.get(str(x), n_u) for x in users])
        ids = self._ids(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.empty(len(texts))
        bs = 32
        with torch.no_grad():
            table = torch.cat([self._users_emb, self._users_emb.mean(0, keepdim=True)])
            saved, self._users_emb = self._users_emb, table
            try:
                from tqdm.auto import tqdm

                for s in tqdm(range(0, len(ids), bs), desc="P-DPO score",
                              disable=not self.verbose, leave=False):
                    b = order[s:s + bs]
                    ub = torch.as_tensor(u[b], device=self._dev)
                    out[b] = self._implicit([ids[i] for i in b], ub).double().cpu().numpy()
            finally:
                self._users_emb = saved
        return out

    def token_rewards(self, texts):  # pragma: no cover - not defined for the implicit reward
        raise NotImplementedError("PDPO gives sequence-level implicit rewards only")

    def _save_extra(self, folder) -> None:
        from safetensors.torch import save_file

        save_file({"user_tokens": self._users_emb.detach().cpu().contiguous()},
                  str(folder / "users.safetensors"))
        (folder / "users.json").write_text(json.dumps(self.users_))

    def _load_extra(self, folder) -> None:
        from safetensors.torch import load_file

        torch = _torch()
        self.users_ = json.loads((folder / "users.json").read_text())
        self._users_emb = torch.nn.Parameter(
            load_file(str(folder / "users.safetensors"))["user_tokens"].to(self._dev))
