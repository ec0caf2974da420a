"""PReF: personalized reward as a low-rank factorisation (Shenfeld et al., 2025).

Implemented: a shared projection ``V`` (``rank`` x d) maps standardised features to ``rank``
response factors, each user has a vector ``z_u``, and ``r_u(x) = z_u . (V x)``. Initialised
by an SVD of the *user x feature* preference matrix whose row ``u`` is the mean feature
difference (chosen minus rejected) over user ``u``'s training pairs: its top ``rank`` right
singular vectors start ``V`` and the scaled left ones start ``z``; then ``V`` and ``z`` are
refined jointly with Bradley-Terry (plus an L2 penalty ``user_l2`` on ``z``). A new user
starts at the mean training vector and fits ``z`` on a few support comparisons.

Departure: PReF's SVD is of a user x response matrix over responses shared by users; the
candidate pools here are per user, so the SVD runs on the feature-space preference
directions instead (identical when features are one-hot response indicators, as in the
known-answer test).
"""

from __future__ import annotations

from typing import Any

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel

__all__ = ["PReF"]


@register("pref")
class PReF(FeatureRewardModel):
    """Low-rank user x response reward factorisation (see the module docstring).

    Parameters
    ----------
    rank : int, default 4
    user_l2 : float, default 1e-3
    **kwargs
        :class:`~.heads.FeatureRewardModel` settings.

    Examples
    --------
    >>> import numpy as np
    >>> m = PReF(rank=1, epochs=100).fit_features(np.eye(3), [0, 1], [1, 2], ["a", "a"])
    >>> s = m.score_features(np.eye(3), ["a"] * 3)
    >>> bool(s[0] > s[1] > s[2])
    True
    """

    def __init__(self, backbone: str | None = None, *, rank: int = 4, user_l2: float = 1e-3,
                 **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.rank = rank
        self.user_l2 = user_l2

    def _build(self, d, n_users, n_train):
        torch = _torch()
        nn = torch.nn
        k = int(self.rank)
        lam = float(self.user_l2)

        class Factor(nn.Module):
            def __init__(self):
                super().__init__()
                self.V = nn.Parameter(torch.zeros(k, d))
                self.user_z = nn.Parameter(torch.zeros(n_users, k))

            def reward(self, X, u):
                return ((X @ self.V.T) * self.user_z[u]).sum(-1)

            def penalty(self):
                return lam * (self.user_z ** 2).sum(-1).mean()

        return Factor()

    def _init_from_data(self, module, X, c, r, u):
        torch = _torch()
        n_users, k = module.user_z.shape
        diff = self._take(X, c) - self._take(X, r)
        D = torch.zeros(n_users, diff.shape[1]).index_add_(0, u, diff)
        cnt = torch.bincount(u, minlength=n_users).clamp(min=1).unsqueeze(1)
        D = D / cnt
        U, S, Vh = torch.linalg.svd(D, full_matrices=False)
        m = min(k, S.shape[0])
        with torch.no_grad():
            g = torch.Generator().manual_seed(int(self.seed))
            module.V.copy_(torch.randn(module.V.shape, generator=g) * 1e-2)
            module.user_z.copy_(torch.randn(module.user_z.shape, generator=g) * 1e-2)
            # Balanced split of the singular values between users and factors.
            module.V[:m] = Vh[:m] * S[:m, None].sqrt() * 4
            module.user_z[:, :m] = U[:, :m] * S[:m].sqrt() * 4

    def _adapt(self, module, X, c, r, u, adapt_idx, n_train):
        torch = _torch()
        with torch.no_grad():
            module.user_z[adapt_idx] = module.user_z[:n_train].mean(0)
        super()._adapt(module, X, c, r, u, adapt_idx, n_train)
