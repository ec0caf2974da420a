"""VPL: variational preference learning (Poddar et al., 2024).

Implemented: an encoder maps each comparison of a user to an embedding of its feature
difference ``MLP(x_chosen - x_rejected)``, averages them over a context set of the user's
pairs, and outputs a Gaussian ``q(z | context) = N(mu, diag(exp(logvar)))`` of dimension
``latent_dim``. The reward is a decoder conditioned on a sample of the latent,
``r(x, z) = MLP([x, z])``. Training maximises the ELBO: per training user and epoch, a
random context of at most ``context_size`` pairs is encoded, ``z`` is drawn with the
reparameterisation trick, and the loss is the Bradley-Terry NLL of the user's pairs plus
``beta`` times ``KL(q || N(0, I))`` per pair. At scoring time each user's latent is the
posterior mean from all their training pairs (training users) or from their support pairs
(adaptation users; no gradient step, as in VPL). Unknown users get the prior mean ``z = 0``.

Departures: VPL encodes each pair with a pretrained LM embedding of both responses and
uses a self-attention pooling; here the pair embedding is an MLP of the frozen feature
difference and pooling is the mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel
from .losses import bt_loss

__all__ = ["VPL"]


@register("vpl")
class VPL(FeatureRewardModel):
    """Latent-variable reward conditioned on a user's comparisons (see the module docstring).

    Parameters
    ----------
    latent_dim : int, default 8
    hidden : int, default 64
    context_size : int, default 16
    beta : float, default 0.01
        Weight of the KL term per pair.
    **kwargs
        :class:`~.heads.FeatureRewardModel` settings.

    Attributes
    ----------
    latents_ : numpy.ndarray (n_users, latent_dim)
        Posterior mean latent of each user in ``users_``.
    """

    def __init__(self, backbone: str | None = None, *, latent_dim: int = 8, hidden: int = 64,
                 context_size: int = 16, beta: float = 0.01, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.context_size = context_size
        self.beta = beta

    def _has_fallback(self) -> bool:
        return True

    def _build(self, d, n_users, n_train):
        torch = _torch()
        nn = torch.nn
        L, h = int(self.latent_dim), int(self.hidden)
        torch.manual_seed(int(self.seed))

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, h), nn.GELU())
                self.mu = nn.Linear(h, L)
                self.logvar = nn.Linear(h, L)
                self.dec = nn.Sequential(nn.Linear(d + L, h), nn.GELU(), nn.Linear(h, 1))
                self.register_buffer("latents", torch.zeros(n_users + 1, L))  # last: prior

            def posterior(self, xc, xr):
                e = self.enc(xc - xr).mean(0)
                return self.mu(e), self.logvar(e).clamp(-8, 4)

            def decode(self, X, z):
                return self.dec(torch.cat([X, z.expand(X.shape[0], -1)], -1)).squeeze(-1)

            def reward(self, X, u):
                z = self.latents[u]  # u == -1 picks the prior row
                return self.dec(torch.cat([X, z], -1)).squeeze(-1)

        return Model()

    def _train_shared(self, module, X, c, r, u, w):
        torch = _torch()
        opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(int(self.seed))
        users = torch.unique(u)
        rows = {int(k): torch.nonzero(u == k).squeeze(1) for k in users}
        module.train()
        for _ in range(int(self.epochs)):
            for k in users[torch.randperm(len(users), generator=gen)].tolist():
                idx = rows[k]
                ctx = idx[torch.randperm(len(idx), generator=gen)[: int(self.context_size)]]
                mu, logvar = module.posterior(X[c[ctx]], X[r[ctx]])
                z = mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()
                nll = bt_loss(module.decode(X[c[idx]], z), module.decode(X[r[idx]], z))
                kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum()
                loss = nll + float(self.beta) * kl / len(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        module.eval()
        self._set_latents(module, X, c, r, u)

    def _set_latents(self, module, X, c, r, u):
        torch = _torch()
        with torch.no_grad():
            for k in torch.unique(u).tolist():
                idx = torch.nonzero(u == k).squeeze(1)
                module.latents[k] = module.posterior(X[c[idx]], X[r[idx]])[0]

    def _adapt(self, module, X, c, r, u, adapt_idx, n_train):
        if len(c):
            self._set_latents(module, X, c, r, u)

    def _user_index(self, users) -> np.ndarray:
        u = super()._user_index(users)
        u[u < 0] = len(self.users_)  # prior row
        return u

    @property
    def latents_(self) -> np.ndarray:
        return self.module_.latents[:-1].detach().cpu().numpy()
