"""LLM-as-judge selectors: pointwise 1-10 ratings and a pairwise knockout tournament.

Both give one score per candidate, so they are score columns like ``score_prob`` and run
through :func:`ttp_diag.bon_curve` (ties resolved as for any selector: the true reward is
averaged over a tied group).

* :meth:`LLMJudge.rate` - the first paper's pointwise judge (appendix B.2): the expected
  rating under the judge's next-token distribution over "1".."10" (reading probabilities
  instead of sampling one number removes sampling noise and most ties).
* :func:`knockout_scores` - the SynthesizeMe-style persona-conditioned tournament
  (appendix B.4): single elimination over a seeded random bracket, ``M - 1`` comparisons for
  ``M`` candidates (an odd one out gets a bye). A candidate's score is the number of
  matches it won, so the tournament winner has the highest score.
  :meth:`LLMJudge.compare` compares two candidates by ``log P("A") - log P("B")``, averaged
  over both presentation orders to cancel position bias (2 forward passes per match).

Note on Best-of-N. ``bon_curve`` draws N-subsets of the pool and keeps the highest score;
with tournament scores this is the candidate that went furthest in the full-pool bracket,
not the winner of a fresh N-candidate tournament. At N = M the two coincide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ttp_diag.gen.evaluation.policy import PolicyModel
from ttp_diag.gen.evaluation.split import EvaluationInputError

__all__ = ["LLMJudge", "knockout_scores", "persona_context"]


def persona_context(support: Sequence[Mapping], max_items: int = 5) -> str:
    """The user's persona for the judge: their latest support examples (input -> output).

    Examples
    --------
    >>> print(persona_context([{"body": "A cat.", "output": "Cat Wins"}]))
    Examples of what this user wrote:
    - Cat Wins
    """
    items = list(support)[-int(max_items):]
    return "Examples of what this user wrote:\n" + "\n".join(f"- {e['output']}" for e in items)


def knockout_scores(n: int, compare: Callable[[int, int], float], *, seed: int = 0
                    ) -> tuple[np.ndarray, int]:
    """Single-elimination tournament over ``n`` candidates.

    Parameters
    ----------
    n : int
        Number of candidates.
    compare : callable
        ``compare(i, j) > 0`` when candidate ``i`` beats ``j`` (``< 0``: ``j`` wins; ``0``:
        the lower index wins, a fixed rule so that results are reproducible).
    seed : int
        Seed of the bracket.

    Returns
    -------
    (numpy.ndarray, int)
        Wins per candidate and the number of comparisons (always ``n - 1``).

    Examples
    --------
    >>> reward = [0.1, 0.9, 0.4, 0.7, 0.2]
    >>> wins, calls = knockout_scores(5, lambda i, j: reward[i] - reward[j], seed=3)
    >>> int(np.argmax(wins)), calls
    (1, 4)
    """
    if int(n) < 1:
        raise EvaluationInputError(f"n={n}; a tournament needs at least one candidate")
    wins = np.zeros(int(n))
    alive = list(np.random.default_rng(seed).permutation(int(n)))
    calls = 0
    while len(alive) > 1:
        nxt = []
        # an odd one out gets a bye: the shorter slice ends the pairing on purpose
        for a, b in zip(alive[0::2], alive[1::2], strict=False):
            d = compare(int(a), int(b))
            calls += 1
            w = a if d > 0 or (d == 0 and a < b) else b
            wins[w] += 1
            nxt.append(w)
        if len(alive) % 2:
            nxt.append(alive[-1])  # bye
        alive = nxt
    return wins, calls


class LLMJudge:
    """A causal LM as a judge of candidates for one user's query.

    Parameters
    ----------
    policy : PolicyModel
        The judge model (e.g. SmolLM2 through the transformers backend).
    task_noun : str
        What is judged ("headline").
    swap : bool
        Average the pairwise preference over both presentation orders.
    """

    def __init__(self, policy: PolicyModel, *, task_noun: str = "headline", swap: bool = True):
        self.policy = policy
        self.task_noun = task_noun
        self.swap = swap
        self.n_forward_ = 0

    def _next_logprobs(self, prompts: Sequence[str], suffix: str = ""):
        import torch

        pm = self.policy
        out = []
        with torch.inference_mode():
            for p in prompts:
                ids = pm.prompt_ids(p) + (pm.completion_ids(suffix) if suffix else [])
                logits = pm.model(input_ids=torch.tensor([ids], device=pm.device)).logits
                self.n_forward_ += 1
                out.append(torch.log_softmax(logits[0].float(), -1).cpu())
        return out

    def _tok_id(self, s: str) -> int:
        ids = self.policy.completion_ids(s)
        return ids[0]

    def rate(self, context: str, body: str, texts: Sequence[str]) -> np.ndarray:
        """Expected 1-10 rating of each text (one forward pass per text)."""
        digits = [self._tok_id(str(d)) for d in range(1, 10)]
        zero = self._tok_id("0")
        prompts = [
            f"{context}\n\nArticle: {body}\nCandidate {self.task_noun}: {t}\n\nOn a scale of "
            f"1 to 10, how likely is it that this user wrote this {self.task_noun}? Answer "
            "with one number." for t in texts
        ]
        out = []
        for _p, lsm in zip(prompts, self._next_logprobs(prompts, suffix="1"), strict=True):
            # Position -2 predicts the first digit; position -1 ("1" given) predicts "0".
            first = lsm[-2, digits].exp().numpy().astype(float)
            p10 = float(lsm[-1, zero].exp())
            probs = np.concatenate([[first[0] * (1 - p10)], first[1:], [first[0] * p10]])
            probs = probs / probs.sum()
            out.append(float((probs * np.arange(1, 11)).sum()))
        return np.array(out)

    def compare(self, context: str, body: str, a: str, b: str) -> float:
        """``log P(A) - log P(B)`` for "which text did this user write", > 0 favours ``a``."""
        ta, tb = self._tok_id("A"), self._tok_id("B")

        def ask(x, y):
            return (f"{context}\n\nArticle: {body}\n{self.task_noun.capitalize()} A: {x}\n"
                    f"{self.task_noun.capitalize()} B: {y}\n\nWhich {self.task_noun} would this "
                    "user write? Answer A or B.")

        orders = [(a, b, 1.0)] + ([(b, a, -1.0)] if self.swap else [])
        total = 0.0
        for lsm, (_, _, sign) in zip(self._next_logprobs([ask(x, y) for x, y, _ in orders]),
                                     orders, strict=True):
            total += sign * float(lsm[-1, ta] - lsm[-1, tb])
        return total / len(orders)

    def tournament(self, context: str, body: str, texts: Sequence[str], *, seed: int = 0
                   ) -> tuple[np.ndarray, int]:
        """Knockout tournament scores (wins) of ``texts``; see :func:`knockout_scores`."""
        texts = list(texts)
        return knockout_scores(len(texts), lambda i, j: self.compare(context, body, texts[i],
                                                                      texts[j]), seed=seed)
