"""Loss functions of the reward models (torch tensors in, scalar tensor out).

The pointwise losses of the first paper (weighted MSE, Gaussian NLL / beta-NLL, soft-target
BCE, the high-score contrastive term of eq. 8) and the Bradley-Terry pairwise loss used by
the reward-model zoo of the second paper. torch is imported lazily, inside the functions.
"""

from __future__ import annotations

import numpy as np

from ttp_diag.exceptions import ConfigError

__all__ = [
    "bce_loss",
    "bounded_variance",
    "bt_loss",
    "extreme_score_weights",
    "gaussian_nll",
    "high_score_contrastive",
    "label_weights",
    "weighted_mse",
]


def _torch():
    import torch

    return torch


def label_weights(y, low: float = 0.3, high: float = 1.0):
    """Sample weights linear in the label: ``low + (high - low) * y``.

    The user RMs weight high-quality samples more (appendix D.2: "linear sample weighting
    with weights in [0.3, 1.0] proportional to ground-truth scores"). Labels are rewards
    in [0, 1], so ``y = 0`` gets ``low`` and ``y = 1`` gets ``high``.

    Parameters
    ----------
    y : torch.Tensor
        Labels in [0, 1].
    low, high : float

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> label_weights(torch.tensor([0.0, 0.5, 1.0])).tolist()
    [0.30000001192092896, 0.6499999761581421, 1.0]
    """
    torch = _torch()
    return low + (high - low) * torch.clamp(y, 0.0, 1.0)


def _weighted_mean(per_sample, weights):
    if weights is None:
        return per_sample.mean()
    return (weights * per_sample).sum() / weights.sum()


def weighted_mse(mu, y, weights=None):
    """Weighted mean squared error ``sum(w (mu - y)^2) / sum(w)``.

    Parameters
    ----------
    mu, y : torch.Tensor, shape (n,)
    weights : torch.Tensor, optional
        Default: equal weights.

    Returns
    -------
    torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> float(weighted_mse(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]),
    ...                    torch.tensor([3.0, 1.0])))
    0.75
    """
    return _weighted_mean((mu - y) ** 2, weights)


def gaussian_nll(mu, var, y, weights=None, beta: float = 0.0):
    """Gaussian negative log-likelihood of eq. 6, optionally beta-NLL.

    Per sample ``0.5 log var + (y - mu)^2 / (2 var)`` (the constant ``0.5 log 2 pi`` is
    dropped, as in the paper). With ``beta > 0`` each term is multiplied by
    ``var.detach() ** beta`` (Seitzer et al. 2022): the value changes and so does the
    gradient, which stops low-variance points from dominating the fit of ``mu``.

    Parameters
    ----------
    mu, var, y : torch.Tensor, shape (n,)
        Predicted mean, predicted variance (> 0), label.
    weights : torch.Tensor, optional
        Sample weights for a weighted mean.
    beta : float, default 0.0
        0 gives the plain NLL, 0.5 the setting recommended by Seitzer et al., 1 a loss
        whose gradient on ``mu`` equals that of the MSE.

    Returns
    -------
    torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> v = gaussian_nll(torch.tensor([0.5]), torch.tensor([0.25]), torch.tensor([1.0]))
    >>> round(float(v), 6)  # 0.5*log(0.25) + 0.25/(2*0.25)
    -0.193147
    """
    torch = _torch()
    per = 0.5 * torch.log(var) + (y - mu) ** 2 / (2.0 * var)
    if beta:
        per = per * var.detach() ** beta
    return _weighted_mean(per, weights)


def bce_loss(logits, y, weights=None):
    """Weighted binary cross-entropy with soft targets ``y`` in [0, 1] on logits.

    Parameters
    ----------
    logits, y : torch.Tensor, shape (n,)
    weights : torch.Tensor, optional

    Returns
    -------
    torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> round(float(bce_loss(torch.tensor([0.0]), torch.tensor([1.0]))), 6)  # log 2
    0.693147
    """
    torch = _torch()
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return _weighted_mean(per, weights)


def high_score_contrastive(
    mu,
    y,
    groups=None,
    threshold: float = 0.5,
    margin: float = 0.02,
    both_high: bool = False,
):
    """High-score margin loss of eq. 8, averaged over the valid pairs.

    A pair ``(i, j)`` counts when both rows belong to the same group (query), ``y_i > y_j``
    and ``y_i > threshold`` (with ``both_high=True`` also ``y_j > threshold``); its loss is
    ``max(0, margin - (mu_i - mu_j))``. Returns 0 (with a gradient path) when no pair is
    valid.

    Parameters
    ----------
    mu, y : torch.Tensor, shape (n,)
    groups : torch.Tensor of int, shape (n,), optional
        Query codes; ``None`` treats the whole batch as one group.
    threshold, margin : float
    both_high : bool, default False

    Returns
    -------
    torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> mu = torch.tensor([0.60, 0.59, 0.10]); y = torch.tensor([0.9, 0.6, 0.2])
    >>> round(float(high_score_contrastive(mu, y)), 6)  # pairs (0,1),(0,2),(1,2)
    0.003333
    """
    torch = _torch()
    valid = (y[:, None] > y[None, :]) & (y[:, None] > threshold)
    if both_high:
        valid = valid & (y[None, :] > threshold)
    if groups is not None:
        valid = valid & (groups[:, None] == groups[None, :])
    if not bool(valid.any()):
        return mu.sum() * 0.0
    diff = mu[:, None] - mu[None, :]
    return torch.relu(margin - diff)[valid].mean()


def bounded_variance(raw, var_min: float = 1e-4, var_max: float = 0.5):
    """``clamp(softplus(raw), var_min, var_max)``, the variance head's output (eq. 7).

    Examples
    --------
    >>> import torch
    >>> bounded_variance(torch.tensor([-20.0, 0.0, 20.0])).tolist()
    [9.999999747378752e-05, 0.5, 0.5]
    """
    torch = _torch()
    return torch.clamp(torch.nn.functional.softplus(raw), var_min, var_max)


def extreme_score_weights(y, n_bins: int = 10, max_weight: float = 10.0) -> np.ndarray:
    """Inverse-frequency weights of label bins, our reading of the Global RM re-weighting.

    Labels are binned into ``n_bins`` equal-width bins on [0, 1]; a sample's raw weight is
    ``1 / count(its bin)``. Weights are capped at ``max_weight`` times the smallest and
    rescaled to mean 1, so rare extreme scores (in practice the high-reward tail) count
    more and the mass of zero labels counts less.

    Parameters
    ----------
    y : array-like of float in [0, 1]
    n_bins : int, default 10
    max_weight : float, default 10.0

    Returns
    -------
    numpy.ndarray of float64, mean 1

    Examples
    --------
    >>> extreme_score_weights([0.0, 0.0, 0.0, 0.95]).round(4).tolist()
    [0.6667, 0.6667, 0.6667, 2.0]
    """
    y = np.clip(np.asarray(y, dtype=float), 0.0, 1.0)
    if y.size == 0:
        return y.copy()
    if n_bins < 1 or max_weight < 1:
        raise ConfigError(f"need n_bins >= 1 and max_weight >= 1, got {n_bins}, {max_weight}")
    b = np.minimum((y * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(b, minlength=n_bins).astype(float)
    w = 1.0 / counts[b]
    w = np.minimum(w, w.min() * max_weight)
    return w / w.mean()



def bt_loss(r_chosen, r_rejected, weights=None):
    """Bradley-Terry negative log-likelihood ``-log sigmoid(r_chosen - r_rejected)``.

    Parameters
    ----------
    r_chosen, r_rejected : torch.Tensor, shape (n,)
        Rewards of the preferred and the dispreferred response of each pair.
    weights : torch.Tensor, optional
        Pair weights for a weighted mean.

    Returns
    -------
    torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> round(float(bt_loss(torch.tensor([0.0]), torch.tensor([0.0]))), 6)  # log 2
    0.693147
    """
    torch = _torch()
    per = -torch.nn.functional.logsigmoid(r_chosen - r_rejected)
    return _weighted_mean(per, weights)
