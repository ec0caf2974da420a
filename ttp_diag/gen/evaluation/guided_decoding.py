"""Reward-guided decoding (ARGS, Khanov et al. 2024) and the choice of its weight lambda.

At each step the policy's top-``k`` next tokens ``v`` are rescored with
``log pi(v | x, y_<t) + lambda * r(x, y_<t + v)`` (second paper, eq. 1) and the best one is
kept (``sample=False``) or one is drawn from the softmax of the scores divided by
``temperature`` (``sample=True``). The ``k`` candidate prefixes of a step are scored by the
reward model in one call, so one step costs one reward-model forward pass (for ``k`` up to
the model's batch size), not ``k``. With ``lambda = 0`` (or no reward model) the rule is the
argmax of ``log pi``: greedy decoding, token for token.

:func:`prefix_rewards` gives ``r(x, y_<=t)`` for every token of a fixed completion (the input
of the policy-accuracy scores of eqs. 5-6), and :func:`select_lambda` picks lambda on
training users by policy accuracy, returning the whole grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ttp_diag.gen.backends import cache_kwarg, output_cache
from ttp_diag.gen.evaluation.metrics import pairwise_accuracy, score_rgd
from ttp_diag.gen.evaluation.policy import PolicyModel
from ttp_diag.gen.evaluation.split import EvaluationInputError

__all__ = ["args_decode", "prefix_rewards", "select_lambda", "check_lambda", "harmonic_lambda",
           "LAMBDA_RULES"]

RewardFn = Callable[[list[str]], np.ndarray]


def check_lambda(lam: float) -> float:
    """Validate a reward weight.

    Examples
    --------
    >>> check_lambda(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag...EvaluationInputError: lambda=-1 is negative; ARGS weights the reward with ...
    """
    if not np.isfinite(lam) or lam < 0:
        raise EvaluationInputError(f"lambda={lam} is negative; ARGS weights the reward with "
                                   "lambda >= 0 (0 = greedy decoding of the base policy)")
    return float(lam)


def _first_line_done(text: str) -> bool:
    head, sep, _ = text.partition("\n")
    return bool(sep) and bool(head.strip())


def args_decode(
    policy: PolicyModel,
    prompt: str,
    *,
    reward_fn: RewardFn | None = None,
    lam: float = 0.0,
    top_k: int = 10,
    max_new_tokens: int = 24,
    first_line: bool = True,
    sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> dict:
    """Decode one completion with ARGS.

    Parameters
    ----------
    policy : PolicyModel
    prompt : str
        The policy prompt (the backend's chat template is applied).
    reward_fn : callable, optional
        ``reward_fn(list_of_completion_texts) -> array`` scoring candidate prefixes (bind
        the query input and user with :func:`ttp_diag.gen.evaluation.policy.score_candidates`).
        None (or ``lam=0``) decodes greedily without calling it.
    lam : float
        Reward weight, >= 0.
    top_k : int
        Candidate next tokens per step.
    max_new_tokens : int
    first_line : bool
        Stop once the first non-empty line has ended (one-line tasks) and return that line.
    sample, temperature, seed :
        The sampled variant draws from ``softmax(score / temperature)`` over the ``k``.

    Returns
    -------
    dict
        ``text``, ``token_ids``, ``n_reward_calls``.
    """
    import torch

    lam = check_lambda(lam)
    if int(top_k) < 1:
        raise EvaluationInputError(f"top_k={top_k}; rescore at least one token (top_k >= 1)")
    use_rm = reward_fn is not None and lam > 0
    model, tok = policy.model, policy.tokenizer
    ids = torch.tensor([policy.prompt_ids(prompt)], device=policy.device)
    gen = torch.Generator().manual_seed(int(seed))
    out_ids: list[int] = []
    calls = 0
    eos = tok.eos_token_id
    with torch.inference_mode():
        res = model(input_ids=ids, use_cache=True)
        past, logits = output_cache(res), res.logits[0, -1].float()
        kw = cache_kwarg(model)
        for _ in range(int(max_new_tokens)):
            logp = torch.log_softmax(logits, -1)
            top = torch.topk(logp, min(int(top_k), logp.numel()))
            cand, score = top.indices.tolist(), top.values.double().cpu().numpy()
            if use_rm:
                texts = [tok.decode(out_ids + [c], skip_special_tokens=True) for c in cand]
                score = score + lam * np.asarray(reward_fn(texts), float)
                calls += 1
            if sample:
                z = torch.tensor(score / float(temperature))
                j = int(torch.multinomial(torch.softmax(z, 0), 1, generator=gen))
            else:
                j = int(np.argmax(score))  # first maximum: torch.topk order, like argmax
            nxt = cand[j]
            if nxt == eos:
                break
            out_ids.append(nxt)
            if first_line and _first_line_done(tok.decode(out_ids, skip_special_tokens=True)):
                break
            res = model(input_ids=torch.tensor([[nxt]], device=policy.device),
                        use_cache=True, **{kw: past})
            past, logits = output_cache(res), res.logits[0, -1].float()
    text = tok.decode(out_ids, skip_special_tokens=True)
    if first_line:
        from ttp_diag.gen.backends import _postprocess

        # The backends' own rule for one-line tasks (first non-empty line, a repeated
        # "### Headline:" marker removed), so decoded and sampled answers are comparable.
        text = _postprocess(text, True)
    return {"text": text, "token_ids": out_ids, "n_reward_calls": calls}


def prefix_rewards(policy: PolicyModel, completion: str, reward_fn: RewardFn) -> np.ndarray:
    """``r(x, y_<=t)`` for every token ``t`` of ``completion``, in one reward call.

    Examples
    --------
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> pm = PolicyModel(tiny_random_backend())
    >>> prefix_rewards(pm, "abc", lambda texts: np.array([len(t) for t in texts], float))
    array([1., 2., 3.])
    """
    ids = policy.completion_ids(completion)
    tok = policy.tokenizer
    texts = [tok.decode(ids[: t + 1], skip_special_tokens=True) for t in range(len(ids))]
    return np.asarray(reward_fn(texts), float)


def select_lambda(
    pairs: pd.DataFrame,
    grid: Sequence[float],
    *,
    ties: str = "half",
    extend: bool = True,
    max_extensions: int = 4,
    factor: float = 2.0,
) -> tuple[float, pd.DataFrame]:
    """Pick lambda on training users by policy accuracy of the reward-guided score.

    A best accuracy on the grid's upper edge says only that the optimum lies at or beyond it,
    so with ``extend`` the grid grows by ``factor`` times its maximum (1 when the maximum is
    0) while the largest value tried still reaches the best accuracy (ties included: a
    plateau can end in a higher peak), at most ``max_extensions`` times; the added values
    are marked ``extended`` in the returned grid, and a choice still on the edge after that
    is flagged ``on_edge`` (and warned about). The lower edge, 0, is the base policy itself
    and needs no extension.

    Parameters
    ----------
    pairs : pandas.DataFrame
        One row per training pair with ``user_id`` and object columns ``lp_chosen``,
        ``lp_rejected`` (token log-probabilities) and ``r_chosen``, ``r_rejected`` (prefix
        rewards).
    grid : sequence of float
        Candidate values (each >= 0).
    ties : {"half", "strict"}
        How a tied pair counts (see :func:`pairwise_accuracy`).
    extend : bool
        Grow the grid past its maximum while the choice sits on it.
    max_extensions : int
        At most this many values are added.
    factor : float
        Each added value is ``factor`` times the current maximum (> 1).

    Returns
    -------
    (float, pandas.DataFrame)
        The chosen lambda (highest mean-over-users accuracy, the smallest one on ties) and
        the grid with ``lam, accuracy, n_pairs, extended, on_edge`` (``on_edge`` is True on
        the chosen row when it is the largest value tried and above 0).

    Examples
    --------
    >>> p = pd.DataFrame({"user_id": ["a", "a"],
    ...     "lp_chosen": [[-2.0], [-3.0]], "lp_rejected": [[-1.0], [-1.0]],
    ...     "r_chosen": [[1.0], [1.0]], "r_rejected": [[0.0], [0.0]]})
    >>> lam, g = select_lambda(p, [0, 1.5, 5], extend=False)
    >>> lam, g["accuracy"].tolist()   # lambda 1.5 fixes the first pair, 5 both
    (5.0, [0.0, 0.5, 1.0])
    >>> lam, g = select_lambda(p, [0, 1, 2], max_extensions=2)   # 2 on the edge: 4, 8 tried
    >>> lam, g["lam"].tolist(), g["extended"].tolist()
    (4.0, [0.0, 1.0, 2.0, 4.0, 8.0], [False, False, False, True, True])
    """
    grid = sorted({check_lambda(x) for x in grid})
    if not grid:
        raise EvaluationInputError("empty lambda grid; pass values such as [0, 0.5, 1, 2, 5]")
    if pairs.empty:
        raise EvaluationInputError("no training pairs to choose lambda on; add training users")
    if extend and not factor > 1:
        raise EvaluationInputError(f"factor={factor}; the grid grows by a factor > 1, e.g. 2")
    g = _lambda_accuracies(pairs, grid, ties)
    g["extended"] = False
    n_added = 0
    while True:
        best = g.sort_values(["accuracy", "lam"], ascending=[False, True]).iloc[0]
        top = float(g["lam"].max())
        top_is_best = top > 0 and float(g.loc[g["lam"] == top, "accuracy"].iloc[0]) >= float(
            best["accuracy"])
        on_edge = float(best["lam"]) == top and top > 0
        if not (extend and top_is_best and n_added < max_extensions):
            break
        new = _lambda_accuracies(pairs, [top * factor if top > 0 else 1.0], ties)
        new["extended"] = True
        g = pd.concat([g, new], ignore_index=True)
        n_added += 1
    lam = float(best["lam"])
    g["on_edge"] = (g["lam"] == lam) & on_edge
    if on_edge and len(g) > 1:
        warnings.warn(f"ARGS lambda={lam:g} is the largest value tried (grid "
                      f"{g['lam'].tolist()}); the optimum may lie beyond it: pass a grid with "
                      "larger values", stacklevel=2)
    return lam, g


#: How the ARGS weight is chosen (``EvalConfig.args_lambda_rule``).
LAMBDA_RULES = ("policy_accuracy", "harmonic")


def harmonic_lambda(grid: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """The second paper's LaMP-5 rule (appendix F.2): the lambda with the highest harmonic
    mean of ROUGE-1, inverse perplexity (coherence) and policy accuracy.

    Parameters
    ----------
    grid : pandas.DataFrame
        One row per lambda with ``lam``, ``accuracy`` (policy accuracy), ``rouge1`` (of the
        ARGS answers against the gold text) and ``inv_perplexity`` (``exp`` of the mean token
        log-probability of those answers under the base policy), each in [0, 1].

    Returns
    -------
    (float, pandas.DataFrame)
        The chosen lambda (the smallest on ties) and the grid with ``harmonic_mean`` added. A
        zero component gives a harmonic mean of 0.

    Examples
    --------
    >>> g = pd.DataFrame({"lam": [0.0, 1.0, 2.0], "accuracy": [0.5, 0.7, 0.9],
    ...                   "rouge1": [0.30, 0.30, 0.05], "inv_perplexity": [0.2, 0.2, 0.1]})
    >>> lam, out = harmonic_lambda(g)  # 2.0 has the best accuracy, 1.0 the best balance
    >>> lam, out["harmonic_mean"].round(4).tolist()
    (1.0, [0.2903, 0.3073, 0.0964])
    """
    need = [c for c in ("lam", "accuracy", "rouge1", "inv_perplexity") if c not in grid.columns]
    if need:
        raise EvaluationInputError(f"harmonic_lambda: grid lacks column(s) {need}; evaluate "
                                   "ROUGE-1 and inverse perplexity of the ARGS answers at "
                                   "every lambda first")
    if grid.empty:
        raise EvaluationInputError("harmonic_lambda: empty grid")
    parts = grid[["rouge1", "inv_perplexity", "accuracy"]].to_numpy(float)
    if not np.isfinite(parts).all() or (parts < 0).any():
        raise EvaluationInputError("harmonic_lambda: ROUGE-1, inverse perplexity and accuracy "
                                   "must be finite and >= 0 at every lambda")
    with np.errstate(divide="ignore"):
        hm = np.where((parts > 0).all(axis=1), 3.0 / (1.0 / parts).sum(axis=1), 0.0)
    out = grid.assign(harmonic_mean=hm)
    best = out.sort_values(["harmonic_mean", "lam"], ascending=[False, True]).iloc[0]
    return float(best["lam"]), out


def _lambda_accuracies(pairs: pd.DataFrame, grid: Sequence[float], ties: str) -> pd.DataFrame:
    """Policy accuracy of the reward-guided score at every lambda of ``grid``."""
    rows = []
    for lam in grid:
        d = pd.DataFrame({
            "user_id": pairs["user_id"].to_numpy(),
            "score_chosen": [score_rgd(a, b, lam) for a, b in zip(
                pairs["lp_chosen"], pairs["r_chosen"], strict=True)],
            "score_rejected": [score_rgd(a, b, lam) for a, b in zip(
                pairs["lp_rejected"], pairs["r_rejected"], strict=True)],
        })
        acc = pairwise_accuracy(d, ties=ties)  # "half" or "strict" (ttp_diag.stats rule)
        rows.append(dict(lam=lam, accuracy=float(acc["accuracy"].iloc[-2]),
                         n_pairs=len(d)))
    return pd.DataFrame(rows)
