"""Method names of the evaluation runner and their validation.

=====================  ================================================================
name                   what generates the answer to a query
=====================  ================================================================
``zero_shot``          greedy decoding of the base policy, no history
``icl``                greedy, ``k`` random support items as demonstrations
``icl_rag``            greedy, the ``k`` most similar support items (MiniLM)
``args_<rm>``          ARGS greedy with reward model ``<rm>`` (global, det, prob, ...)
``args_<rm>_sampled``  ARGS sampled variant
``bon_<rm>``           Best-of-N over the run's candidate pool, selected by ``<rm>``
``bon_random``         a random pool candidate (the pool mean, N = 1)
``bon_oracle``         the pool candidate with the highest true reward
``judge_pointwise``    Best-of-N selected by the LLM's expected 1-10 rating
``judge_pairwise``     Best-of-N selected by a persona-conditioned knockout tournament
``lora``               greedy decoding of the policy fine-tuned on the user's support items
``lora_bon_<rm>``      N samples of the fine-tuned policy, selected by ``<rm>`` (adds
                       ``lora_random``, the mean sample)
=====================  ================================================================

With several ``k`` (``icl_ks``), the ICL methods are named ``icl_k<k>`` / ``icl_rag_k<k>``;
these names can also be given directly (``icl_rag_k2``) to run one ``k`` only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from ttp_diag.gen.evaluation.split import EvaluationInputError

__all__ = ["parse_methods", "method_rm", "FIXED_METHODS", "RM_METHOD_PREFIXES"]

FIXED_METHODS = ("zero_shot", "icl", "icl_rag", "bon_random", "bon_oracle", "judge_pointwise",
                 "judge_pairwise", "lora")
RM_METHOD_PREFIXES = ("args_", "bon_", "lora_bon_")


def method_rm(method: str) -> str | None:
    """The reward model a method uses, or None.

    Examples
    --------
    >>> method_rm("args_prob_sampled"), method_rm("lora_bon_det"), method_rm("icl_k2")
    ('prob', 'det', None)
    """
    if method in FIXED_METHODS or method.startswith(("icl", "judge_", "lora_random")):
        return None
    for p in ("lora_bon_", "args_", "bon_"):
        if method.startswith(p):
            rm = method[len(p):]
            return rm[: -len("_sampled")] if rm.endswith("_sampled") else rm
    return None


def parse_methods(methods: str | Sequence[str], rm_kinds: Sequence[str]) -> list[str]:
    """Validate a comma-separated list of method names against the available reward models.

    Examples
    --------
    >>> parse_methods("zero_shot,args_prob,bon_global", ["global", "prob"])
    ['zero_shot', 'args_prob', 'bon_global']
    >>> parse_methods("zero_shot,args_pro", ["prob"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag...EvaluationInputError: unknown method 'args_pro' (did you mean 'args_prob'?); ...
    """
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    known = set(FIXED_METHODS)
    for rm in rm_kinds:
        known |= {f"args_{rm}", f"args_{rm}_sampled", f"bon_{rm}", f"lora_bon_{rm}"}
    out = []
    for m in methods:
        if m not in known and not re.fullmatch(r"icl(_rag)?_k\d+", m):
            close = difflib.get_close_matches(m, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            rm = method_rm(m)
            if rm is not None and any(m.startswith(p) for p in RM_METHOD_PREFIXES):
                hint += (f"; reward model {rm!r} is not in this run (available: "
                         f"{sorted(rm_kinds)})") if rm not in rm_kinds else ""
            raise EvaluationInputError(f"unknown method {m!r}{hint}; known methods: "
                                       f"{', '.join(sorted(known))}")
        if m not in out:
            out.append(m)
    if not out:
        raise EvaluationInputError("no methods given; pass e.g. --methods zero_shot,icl,"
                                   "args_prob,bon_prob")
    return out
