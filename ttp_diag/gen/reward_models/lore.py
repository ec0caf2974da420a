"""LoRE and LoRE-Alt: low-rank reward bases with per-user convex weights (Bose et al., 2025).

Implemented: ``K`` linear reward bases on the standardised frozen features,
``r_k(x) = b_k . x``, and for each user a point on the simplex, ``w_u = softmax(a_u)``,
with the user's reward ``r_u(x) = sum_k w_uk r_k(x)``. Trained with Bradley-Terry on the
training users' pairs; **LoRE** updates bases and weights jointly (one Adam optimiser),
**LoRE-Alt** alternates per mini-batch, as the second paper describes: on each batch one
step of the weights' optimiser (bases fixed), then one step of the bases' optimiser (weights
fixed) on the same batch; each has its own Adam optimiser, kept across the whole run. A new
user fits only their weights on their support pairs (bases frozen).
``bases=`` fixes the bases to given vectors (then only the weights are learned), which is
how the known-answer test checks the simplex weights.

Departures: the original LoRE learns the bases on top of a fine-tuned reward backbone and
regularises the weights; here the backbone is frozen and the simplex is parametrised by a
softmax (no explicit regulariser).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel

__all__ = ["LoRE", "LoREAlt"]


@register("lore")
class LoRE(FeatureRewardModel):
    """Reward bases + per-user simplex weights (see the module docstring).

    Parameters
    ----------
    n_bases : int, default 4
    bases : array (K, d), optional
        Fixed bases (in the standardised feature space); learned when None.
    **kwargs
        :class:`~.heads.FeatureRewardModel` settings.

    Attributes
    ----------
    weights_ : numpy.ndarray (n_users, K)
        Each user's convex weights, rows in ``users_`` order.

    Examples
    --------
    >>> F = np.eye(3)
    >>> m = LoRE(bases=np.eye(3), adapt_epochs=0, epochs=200, lr=0.05)
    >>> m = m.fit_features(F, [2, 2], [0, 1], ["a", "a"])
    >>> int(m.weights_[0].argmax())
    2
    """

    alternate = False

    def __init__(self, backbone: str | None = None, *, n_bases: int = 4, bases=None,
                 **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.n_bases = n_bases
        self.bases = bases

    def _build(self, d, n_users, n_train):
        torch = _torch()
        nn = torch.nn
        fixed = None if self.bases is None else torch.tensor(np.asarray(self.bases, np.float32))
        k = int(self.n_bases) if fixed is None else fixed.shape[0]
        g = torch.Generator().manual_seed(int(self.seed))

        class Bases(nn.Module):
            def __init__(self):
                super().__init__()
                if fixed is None:
                    self.B = nn.Parameter(torch.randn(k, d, generator=g) / d ** 0.5)
                else:
                    self.register_buffer("B", fixed)
                self.user_a = nn.Parameter(torch.zeros(n_users, k))

            def weights(self):
                return torch.softmax(self.user_a, -1)

            def reward(self, X, u):
                return ((X @ self.B.T) * self.weights()[u]).sum(-1)

        return Bases()

    def _train_shared(self, module, X, c, r, u, w):
        if not self.alternate:
            return super()._train_shared(module, X, c, r, u, w)
        torch = _torch()
        shared = [p for n, p in module.named_parameters() if not n.startswith("user_")]
        user = [p for n, p in module.named_parameters() if n.startswith("user_")]
        opts = [torch.optim.Adam(ps, lr=self.lr, weight_decay=self.weight_decay)
                for ps in (user, shared) if ps]  # weights first
        gen = torch.Generator().manual_seed(int(self.seed))
        n = len(c)
        bs = min(n, int(self.batch_size))
        module.train()
        for _ in range(int(self.epochs)):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, bs):
                b = perm[s:s + bs]
                for opt in opts:
                    self._step(module, opt, X, c[b], r[b], u[b], None if w is None else w[b])
        module.eval()

    @property
    def weights_(self) -> np.ndarray:
        return self.module_.weights().detach().cpu().numpy()


@register("lore_alt")
class LoREAlt(LoRE):
    """LoRE with alternating updates per mini-batch: weights, then bases, one optimiser each."""

    alternate = True
