"""Global-RM and Global-RM-V2: the second paper's non-personalized Bradley-Terry baselines.

* ``global_bt`` (Global-RM): one MLP head on the *last token's* hidden state, trained with
  Bradley-Terry on all users' pairs pooled ("using last token embedding as input to RM
  decoder").
* ``global_bt_v2`` (Global-RM-V2): the same head applied to *every token's* hidden state;
  the sequence reward is the mean of the per-token rewards, which also gives token-level
  (prefix) rewards through :meth:`GlobalBTV2.token_rewards`.

Departure: frozen backbone (no LoRA); with MiniLM (a BERT encoder) the last token is
``[SEP]``, whose state attends to the whole text.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._util import _torch
from .base import register
from .heads import FeatureRewardModel

__all__ = ["GlobalBT", "GlobalBTV2"]


def _mlp(d: int, hidden: int, seed: int):
    torch = _torch()
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, 1))


@register("global_bt")
class GlobalBT(FeatureRewardModel):
    """Global Bradley-Terry RM on last-token features (``users`` ignored).

    Examples
    --------
    >>> F = np.eye(3)
    >>> m = GlobalBT(epochs=100).fit_features(F, [0, 1], [1, 2], ["a", "b"])
    >>> s = m.score_features(F)
    >>> bool(s[0] > s[2])
    True
    """

    personalized = False
    pooling: ClassVar[str] = "last"

    def __init__(self, backbone: str | None = None, *, hidden: int = 64, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.hidden = hidden

    def _build(self, d, n_users, n_train):
        torch = _torch()
        head = _mlp(d, int(self.hidden), int(self.seed))

        class Global(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = head

            def reward(self, X, u):
                return self.head(X).squeeze(-1)

        return Global()

    def _adapt(self, *a, **k):
        pass  # nothing user-specific


@register("global_bt_v2")
class GlobalBTV2(GlobalBT):
    """Global BT RM whose sequence reward is the mean of per-token rewards."""

    pooling: ClassVar[str] = "tokens"

    def _build(self, d, n_users, n_train):
        torch = _torch()
        head = _mlp(d, int(self.hidden), int(self.seed))

        class PerToken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = head

            def tokens(self, XM):
                X, M = XM
                return self.head(X).squeeze(-1) * M

            def reward(self, XM, u):
                return self.tokens(XM).sum(-1) / XM[1].sum(-1).clamp(min=1)

        return PerToken()

    def token_rewards(self, texts, *, prompts=None) -> list[np.ndarray]:
        """Per-token rewards of each text's response tokens (after its prompt, when given);
        their running mean is the prefix reward."""
        torch = _torch()
        F = self._features(list(texts), prompts)
        X = self._as_tensor(F)
        with torch.no_grad():
            t = self.module_.tokens(X).cpu().numpy()
        return [t[i, : len(f)] for i, f in enumerate(F)]
