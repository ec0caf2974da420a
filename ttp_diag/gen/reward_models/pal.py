"""PAL: pluralistic alignment with a mixture of prototype ideal points (Chen et al., 2025a).

Implemented (PAL-A's ideal-point model): a shared map ``f`` (linear, ``dim`` outputs, or the
identity with ``projection=False``) sends standardised features into a preference space
with ``K`` prototype points ``p_k``; user ``u`` has simplex weights ``w_u = softmax(a_u)``
and ideal point ``a_u = sum_k w_uk p_k``; the reward is ``-||f(x) - a_u||^2``. Bradley-Terry
on pairs trains ``f``, the prototypes and the weights; a new user fits only the weights on
their support pairs. Prototypes start at ``K`` training items' embeddings (seeded pick).

Departures: PAL also offers PAL-B (a mixture of reward functions) and uses a learned
temperature (here a learned scale ``exp(log_scale)`` on the distance, which keeps the
ideal points unbiased under noiseless comparisons); this implements the ideal-point variant
on a frozen backbone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel

__all__ = ["PAL"]


@register("pal")
class PAL(FeatureRewardModel):
    """Mixture-of-prototypes ideal-point reward (see the module docstring).

    Parameters
    ----------
    n_prototypes : int, default 4
    dim : int, default 16
        Size of the preference space (ignored with ``projection=False``).
    projection : bool, default True
    **kwargs
        :class:`~.heads.FeatureRewardModel` settings.

    Attributes
    ----------
    prototypes_ : numpy.ndarray (K, dim)
    ideal_points_ : numpy.ndarray (n_users, dim)
    """

    def __init__(self, backbone: str | None = None, *, n_prototypes: int = 4, dim: int = 16,
                 projection: bool = True, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.n_prototypes = n_prototypes
        self.dim = dim
        self.projection = projection

    def _build(self, d, n_users, n_train):
        torch = _torch()
        nn = torch.nn
        k = int(self.n_prototypes)
        m = int(self.dim) if self.projection else d
        g = torch.Generator().manual_seed(int(self.seed))
        proj = self.projection

        class Ideal(nn.Module):
            def __init__(self):
                super().__init__()
                self.f = nn.Linear(d, m, bias=False) if proj else nn.Identity()
                if proj:
                    with torch.no_grad():
                        self.f.weight.copy_(torch.randn(m, d, generator=g) / d ** 0.5)
                self.P = nn.Parameter(torch.randn(k, m, generator=g) * 0.1)
                self.user_a = nn.Parameter(torch.zeros(n_users, k))
                # Learned temperature: without it Bradley-Terry can only sharpen by pushing
                # the ideal points outward, which biases them.
                self.log_scale = nn.Parameter(torch.zeros(()))

            def ideal(self):
                return torch.softmax(self.user_a, -1) @ self.P

            def reward(self, X, u):
                return -self.log_scale.exp() * ((self.f(X) - self.ideal()[u]) ** 2).sum(-1)

        return Ideal()

    def _init_from_data(self, module, X, c, r, u):
        torch = _torch()
        items = torch.unique(torch.cat([c, r]))
        g = torch.Generator().manual_seed(int(self.seed))
        pick = items[torch.randperm(len(items), generator=g)[: module.P.shape[0]]]
        with torch.no_grad():
            emb = module.f(self._take(X, pick))
            module.P[: len(pick)] = emb

    @property
    def prototypes_(self) -> np.ndarray:
        return self.module_.P.detach().cpu().numpy()

    @property
    def ideal_points_(self) -> np.ndarray:
        return self.module_.ideal().detach().cpu().numpy()

    @property
    def weights_(self) -> np.ndarray:
        return _torch().softmax(self.module_.user_a, -1).detach().cpu().numpy()
