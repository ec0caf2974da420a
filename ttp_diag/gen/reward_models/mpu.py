"""MPU and MPU-Avg (second paper's per-user MLP baselines).

Implemented: shared frozen backbone features, one small 2-layer GELU MLP head per user
(hidden ``hidden``), trained with Bradley-Terry on that user's pairs (or pointwise MSE with
``loss="mse"`` on a labelled table). The heads are independent: a training user's head sees
only that user's pairs. An adaptation user gets a fresh head fitted on their support pairs.

MPU-Avg departs only for users outside the training set: it scores them with the average of
the training users' rewards (the mean of their heads' outputs), with no adaptation; the
paper describes it only as "MPU-Avg", and we take the reading of the issue ("scored with the
average of the training users' heads"). Unknown users are scored the same way.
Departure from the paper: frozen backbone instead of LoRA rank 8.
"""

from __future__ import annotations

from typing import Any

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel

__all__ = ["MPU", "MPUAvg"]


def _module(d: int, n_users: int, hidden: int, seed: int):
    torch = _torch()
    nn = torch.nn
    g = torch.Generator().manual_seed(seed)

    class PerUserMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.user_W1 = nn.Parameter(torch.randn(n_users, d, hidden, generator=g) / d ** 0.5)
            self.user_b1 = nn.Parameter(torch.zeros(n_users, hidden))
            self.user_w2 = nn.Parameter(torch.randn(n_users, hidden, generator=g) / hidden ** 0.5)

        def reward(self, X, u):
            h = torch.nn.functional.gelu(torch.einsum("nd,ndh->nh", X, self.user_W1[u])
                                         + self.user_b1[u])
            return (h * self.user_w2[u]).sum(-1)

    return PerUserMLP()


@register("mpu")
class MPU(FeatureRewardModel):
    """Per-user MLP heads on shared frozen features (see the module docstring).

    Parameters
    ----------
    hidden : int, default 32
    **kwargs
        :class:`~.heads.FeatureRewardModel` settings.

    Examples
    --------
    >>> import numpy as np
    >>> F = np.eye(4); c = [0, 1, 0]; r = [3, 2, 2]
    >>> m = MPU(epochs=100).fit_features(F, c, r, ["a"] * 3)
    >>> bool(m.score_features(F, ["a"] * 4)[0] > m.score_features(F, ["a"] * 4)[3])
    True
    """

    def __init__(self, backbone: str | None = None, *, hidden: int = 32, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.hidden = hidden

    def _build(self, d, n_users, n_train):
        return _module(d, n_users, int(self.hidden), int(self.seed))

    def _adapt(self, module, X, c, r, u, adapt_idx, n_train):
        # Only the adaptation users' slices receive gradients (they alone appear in u).
        super()._adapt(module, X, c, r, u, adapt_idx, n_train)


@register("mpu_avg")
class MPUAvg(MPU):
    """MPU whose non-training users are scored with the mean of the training users' heads."""

    def _has_fallback(self) -> bool:
        return True

    def _adapt(self, module, X, c, r, u, adapt_idx, n_train):
        pass  # no per-user fitting for new users: they use the average of the trained heads

    def score_features(self, F, users=None):
        import numpy as np

        u = self._user_index(users)
        n_tr = self.n_train_users_
        out = np.empty(len(F))
        known = (u >= 0) & (u < n_tr)
        if known.any():
            out[known] = super().score_features(self._subset(F, known),
                                                np.asarray(self.users_)[u[known]])
        if (~known).any():
            Fs = self._subset(F, ~known)
            out[~known] = np.mean([super(MPUAvg, self).score_features(Fs, [v] * len(Fs))
                                   for v in self.users_[:n_tr]], axis=0)
        return out

    @staticmethod
    def _subset(F, mask):
        import numpy as np

        if isinstance(F, list):
            return [f for f, k in zip(F, mask, strict=True) if k]
        return np.asarray(F)[mask]
