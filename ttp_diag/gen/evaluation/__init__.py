"""Evaluation suite: does a reward model help *generation*? (issue 10)

Best-of-N selection, reward-guided decoding (ARGS), in-context learning, LLM judges and
per-user LoRA fine-tuning side by side on the same adaptation users, scored against the
users' own text, with the upstream metrics the field selects reward models by (ranking
accuracy, policy accuracy, circular win rate) and the package's own (rho_eff, alpha, beta),
and how well each predicts generation quality across reward models (capture, an outcome, is
reported but never a predictor). Intervals and tests come from :mod:`ttp_diag.stats`.

Modules
-------
split       seeded training/adaptation users, time-ordered support/query sets
pairs       the tidy pairs table: Pref-LaMP hard negatives, candidate-pool pairs
metrics     Definitions 1-3, scoring functions, win rates, rank agreement
policy      token log-probabilities, ICL prompts and demonstrations, reward-model adapter
guided_decoding  ARGS decoding and the choice of lambda
judges      pointwise and pairwise (knockout tournament) LLM judges
lora        per-user LoRA fine-tuning of the policy
methods     method names
runner      the cached evaluation stages; generation: the methods; results: the tidy tables
tables      Tables 2/4/5/6 over reward models, rho_eff vs accuracy; figures: the comparison

Only :mod:`split`, :mod:`pairs`, :mod:`metrics`, :mod:`methods` and :mod:`tables` are
imported here (no torch); the rest is imported where used.
"""

from ttp_diag.gen.evaluation.methods import parse_methods
from ttp_diag.gen.evaluation.metrics import (
    behavioural_alignment,
    bon_win_rate_ceiling,
    pairwise_accuracy,
    rank_agreement,
    score_base,
    score_rgd,
    win_rate,
)
from ttp_diag.gen.evaluation.pairs import (
    PAIR_COLUMNS,
    build_pairs,
    candidate_pairs,
    check_pairs,
    hard_negative_pairs,
)
from ttp_diag.gen.evaluation.split import EvaluationInputError, UserSplit, split_users

__all__ = [
    "EvaluationInputError", "UserSplit", "split_users", "PAIR_COLUMNS", "build_pairs",
    "candidate_pairs", "check_pairs", "hard_negative_pairs", "pairwise_accuracy", "score_base",
    "score_rgd", "behavioural_alignment", "win_rate", "bon_win_rate_ceiling", "rank_agreement",
    "parse_methods",
]
