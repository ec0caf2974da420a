"""The base policy as a scorer: token log-probabilities, ICL prompts, reward-model access.

:class:`PolicyModel` wraps a :class:`ttp_diag.gen.backends.TransformersBackend` (SmolLM2
from GGUF on CPU, the tiny random model in tests) and reads its loaded model and tokenizer;
it never changes the backend. Prompts go through the backend's own ``format_prompt`` (chat
template), so what is scored is what the backend generates from.

:func:`score_candidates` is the one place the evaluation suite calls a reward model: for a
model of the registry it calls ``score(candidates, users, prompts=...)`` with the appendix
E.2 input up to ``[Document]:`` as each candidate's prompt (prompt and response separate:
the model cuts the prompt from the left, never the candidate); a model whose ``score`` takes
no prompts gets the whole E.2 text, and one without ``score`` its ``predict`` (the current
:class:`~ttp_diag.gen.reward_models.GlobalRewardModel` and
:class:`~ttp_diag.gen.reward_models.UserRewardModels`). A model with its own
``score_candidates(bodies, candidates, users)`` (e.g. :class:`GoldRouge`) is used as is.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ttp_diag.gen.backends import cache_kwarg, output_cache
from ttp_diag.gen.evaluation.split import EvaluationInputError

__all__ = ["PolicyModel", "score_candidates", "GoldRouge", "icl_prompt", "select_demos"]


def score_candidates(model, task: str, bodies: Sequence[str], candidates: Sequence[str],
                     users: Sequence[str]) -> np.ndarray:
    """Reward of each candidate for its query input and user, through any reward model.

    Examples
    --------
    >>> gold = GoldRouge({"an article": "cats win big"})
    >>> score_candidates(gold, "lamp4", ["an article"] * 2, ["cats win", "dogs"], ["u", "u"])
    array([0.8, 0. ])
    """
    bodies, candidates = [str(b) for b in bodies], [str(c) for c in candidates]
    users = [str(u) for u in users]
    if not len(bodies) == len(candidates) == len(users):
        raise EvaluationInputError(f"{len(bodies)} inputs, {len(candidates)} candidates and "
                                   f"{len(users)} users; pass one of each per candidate")
    if not candidates:
        return np.zeros(0)
    if hasattr(model, "score_candidates"):
        return np.asarray(model.score_candidates(bodies, candidates, users), float)
    from ttp_diag.gen.prompts import reward_model_prompt

    if hasattr(model, "score") and "prompts" in inspect.signature(model.score).parameters:
        # the reward-model contract: the candidate is the response, the E.2 input up to
        # "[Document]:" its prompt; the model cuts the prompt (never the candidate) to fit
        from ttp_diag.gen.reward_models.base import rm_context

        ctx = {b: rm_context(task, b) for b in dict.fromkeys(bodies)}
        return np.asarray(model.score(candidates, users, prompts=[ctx[b] for b in bodies]),
                          float)
    texts = [reward_model_prompt(task, b, c) for b, c in zip(bodies, candidates, strict=True)]
    if not hasattr(model, "score"):
        raise EvaluationInputError(
            f"{type(model).__name__} has neither score(texts, users) nor "
            "score_candidates(bodies, candidates, users); pass a reward model of "
            "ttp_diag.gen.reward_models or a GoldRouge")
    return np.asarray(model.score(texts, users), float)


class GoldRouge:
    """A "reward model" that is the truth: ``(ROUGE-1 F + ROUGE-L F) / 2`` against the gold.

    The reference point of the suite: its ranking accuracy on pairs whose chosen side is the
    gold is 1 up to ties, and its circular win rate equals the true win rate.

    Parameters
    ----------
    gold : mapping
        Query input (body) -> the user's gold text.
    """

    def __init__(self, gold: Mapping[str, str]):
        self.gold = dict(gold)

    def score_candidates(self, bodies, candidates, users) -> np.ndarray:
        from ttp_diag.gen.labels import rouge_scores

        missing = [b for b in bodies if b not in self.gold]
        if missing:
            raise EvaluationInputError(f"GoldRouge has no gold text for input {missing[0]!r}")
        return rouge_scores(list(candidates), [self.gold[b] for b in bodies])["reward"].to_numpy()


def icl_prompt(task: str, body: str, demos: Sequence[Mapping] = (), *,
               demo_format: str = "gold") -> str:
    """The policy prompt with ``demos`` as history; no demos gives the zero-shot prompt exactly.

    ``demo_format="gold"`` shows (input, gold) pairs (``body``/``output``) as the paper's
    RAG history; ``"triples"`` shows the second paper's (input, chosen, rejected) triples
    (``rejected`` from :func:`ttp_diag.gen.evaluation.pairs.demo_triples`).

    Examples
    --------
    >>> icl_prompt("lamp4", "Dogs bark.") == icl_prompt("lamp4", "Dogs bark.", [])
    True
    >>> print(icl_prompt("lamp4", "Dogs bark.", [{"body": "A cat.", "output": "Cat!",
    ...                  "rejected": "Dog?"}], demo_format="triples").split(chr(10) * 2)[0])
    [User Preferences]
    ### Article: A cat.
    ### Preferred Headline: Cat!
    ### Rejected Headline: Dog?
    """
    from ttp_diag.gen.prompts import POLICY_INSTRUCTIONS, _task_key, policy_prompt

    if demo_format == "gold":
        return policy_prompt(task, body, policy="rag", history=list(demos))
    if demo_format != "triples":
        raise EvaluationInputError(f"demo_format={demo_format!r}; use 'gold' ((input, gold) "
                                   "history) or 'triples' ((input, chosen, rejected))")
    base = policy_prompt(task, body, policy="rag", history=[])
    if not demos:
        return base
    _, inp, out = POLICY_INSTRUCTIONS[_task_key(task)]
    blocks = []
    for d in demos:
        if "rejected" not in d:
            raise EvaluationInputError("demo_format='triples' needs a 'rejected' text per "
                                       "demonstration; attach them with demo_triples()")
        blocks.append(f"### {inp}: {d['body']}\n### Preferred {out}: {d['output']}\n"
                      f"### Rejected {out}: {d['rejected']}")
    return "[User Preferences]\n" + "\n\n".join(blocks) + "\n\n" + base


def select_demos(support: pd.DataFrame, body: str, k: int, *, mode: str = "random",
                 seed: int = 0, encoder=None, user: str = "?") -> list[dict]:
    """``k`` demonstrations from a user's support items (``body``, ``output``, ``position``).

    ``mode="random"`` draws ``k`` items with ``seed``; ``mode="retrieved"`` takes the ``k``
    whose inputs are most similar to ``body`` (MiniLM cosine), most similar last so that
    the best example sits next to the query. ``k=0`` gives no demonstrations.
    """
    if mode not in ("random", "retrieved"):
        raise EvaluationInputError(f"ICL mode {mode!r}; use 'random' or 'retrieved'")
    if int(k) < 0:
        raise EvaluationInputError(f"k={k}; the number of demonstrations must be >= 0")
    if int(k) > len(support):
        raise EvaluationInputError(
            f"k={k} is larger than user {user!r}'s support set ({len(support)} items); use "
            f"k <= {len(support)} or give the user more support items (max_support)")
    if int(k) == 0:
        return []
    if mode == "random":
        idx = np.random.default_rng(seed).choice(len(support), size=int(k), replace=False)
        idx = np.sort(idx)
    else:
        if encoder is None:
            from ttp_diag.gen.retrieval import MiniLMEncoder

            encoder = MiniLMEncoder()
        e = np.asarray(encoder.encode([body] + support["body"].astype(str).tolist()))
        sims = e[1:] @ e[0]
        idx = np.argsort(-sims, kind="stable")[: int(k)][::-1]
    rows = support.iloc[idx]
    ids = rows["item_id"] if "item_id" in rows.columns else [None] * len(rows)
    return [{"item_id": i, "body": b, "output": o}
            for i, b, o in zip(ids, rows["body"], rows["output"], strict=True)]


class PolicyModel:
    """Token-level access to a transformers backend's causal LM.

    Parameters
    ----------
    backend : TransformersBackend
        Loaded lazily; its ``format_prompt`` and tokenizer are used unchanged.
    batch_size : int
        Sequences per forward pass when scoring.

    Examples
    --------
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> pm = PolicyModel(tiny_random_backend())
    >>> lp = pm.token_logprobs(["ab"], ["cd"])[0]
    >>> lp.shape, bool((lp < 0).all())
    ((2,), True)
    """

    def __init__(self, backend, *, batch_size: int = 8):
        if not hasattr(backend, "format_prompt") or not hasattr(backend, "_load"):
            raise EvaluationInputError(
                f"backend {getattr(backend, 'name', backend)!r} gives no token access; use a "
                "transformers backend (make_backend('transformers', 'smollm2'))")
        self.backend = backend
        self.batch_size = batch_size

    @property
    def model(self):
        self.backend._load()
        return self.backend._model

    @property
    def tokenizer(self):
        self.backend._load()
        return self.backend._tok

    @property
    def device(self):
        return self.backend.device

    def prompt_ids(self, prompt: str) -> list[int]:
        tok = self.tokenizer
        add_special = not (self.backend.use_chat_template and getattr(tok, "chat_template", None))
        return tok(self.backend.format_prompt(prompt), add_special_tokens=add_special)["input_ids"]

    def completion_ids(self, text: str) -> list[int]:
        return self.tokenizer(str(text), add_special_tokens=False)["input_ids"]

    def token_logprobs(self, prompts: Sequence[str],
                       completions: Sequence[str]) -> list[np.ndarray]:
        """``log pi(y_t | x, y_<t)`` for every token of each completion."""
        import torch

        if len(prompts) != len(completions):
            raise EvaluationInputError(f"{len(prompts)} prompts but {len(completions)} "
                                       "completions")
        comp = []
        for c in completions:
            ci = self.completion_ids(c)
            if not ci:
                raise EvaluationInputError(f"completion {c!r} has no tokens; drop empty texts")
            comp.append(ci)
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p, []).append(i)
        model, pad = self.model, self.tokenizer.pad_token_id or 0
        out: list[np.ndarray | None] = [None] * len(comp)
        with torch.inference_mode():
            # The prompt is encoded once per distinct prompt (a pair's chosen and rejected side
            # share it) and its key/value cache is repeated for the completions: the prompt,
            # not the short completion, is what costs.
            for prompt, idx in groups.items():
                a = self.prompt_ids(prompt)
                for s in range(0, len(idx), self.batch_size):
                    chunk = idx[s : s + self.batch_size]
                    res = model(input_ids=torch.tensor([a], device=self.device), use_cache=True)
                    first = torch.log_softmax(res.logits[0, -1].float(), -1).cpu()
                    past = output_cache(res)
                    past.batch_repeat_interleave(len(chunk))
                    L = max(len(comp[i]) for i in chunk)
                    ids = torch.full((len(chunk), L), pad, dtype=torch.long)
                    mask = torch.ones((len(chunk), len(a) + L), dtype=torch.long)
                    for r, i in enumerate(chunk):  # right padding after the completion
                        ids[r, : len(comp[i])] = torch.tensor(comp[i])
                        mask[r, len(a) + len(comp[i]):] = 0
                    logits = model(input_ids=ids.to(self.device),
                                   attention_mask=mask.to(self.device),
                                   use_cache=False, **{cache_kwarg(model): past}).logits.float()
                    lsm = torch.log_softmax(logits, -1).cpu()
                    for r, i in enumerate(chunk):
                        b = comp[i]
                        lp = [float(first[b[0]])] + [float(lsm[r, t - 1, b[t]])
                                                     for t in range(1, len(b))]
                        out[i] = np.asarray(lp, dtype=float)
        return out  # type: ignore[return-value]
