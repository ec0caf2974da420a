"""Prompt templates of the paper (appendix E) and persona generation.

* :func:`reward_model_prompt` -- the reward-model input of appendix E.2, shared by every
  reward model (global, deterministic user, probabilistic user).
* :func:`policy_prompt` -- the policy prompts of appendix E.1 for the three policies:
  ``"rag"`` (retrieved user history), ``"persona"`` (a style description of the user) and
  ``"persona_rag"`` (both).
* :func:`persona_request` / :func:`generate_personas` -- the persona: a style description
  written once per user by the generator from 15 of the user's history samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ttp_diag.exceptions import ConfigError

if TYPE_CHECKING:
    from ttp_diag.gen.backends import GenerationBackend
    from ttp_diag.gen.tasks import TaskSpec

__all__ = [
    "RM_INSTRUCTIONS",
    "POLICY_INSTRUCTIONS",
    "reward_model_prompt",
    "format_history",
    "policy_prompt",
    "persona_request",
    "generate_personas",
    "POLICIES",
]


# Appendix E.2: task-specific reward-model instructions.
def _judge(what: str, of: str) -> str:
    return f"Judge how good the Document is as {what} for the {of}. Higher score = better."


RM_INSTRUCTIONS: dict[str, str] = {
    "lamp4": _judge("a headline", "Article"),
    "lamp5": _judge("a title", "Abstract"),
    "longlamp_abstract": _judge("an abstract", "Title"),
    "longlamp_review": _judge("a review", "Product"),
    "longlamp_topic": _judge("a post", "Topic"),
}

# Appendix E.1: (instruction, input marker, output marker) per task.
POLICY_INSTRUCTIONS: dict[str, tuple[str, str, str]] = {
    "lamp4": (
        "Generate a headline for the following article. Match the user\u2019s headline style.",
        "Article",
        "Headline",
    ),
    "lamp5": (
        "Generate a title for the following abstract. "
        "Match the user\u2019s academic titling style. Output ONLY the title.",
        "Abstract",
        "Title",
    ),
    "longlamp_abstract": (
        "Write a scientific abstract for the following title, matching the user\u2019s academic "
        "writing style found in the history.",
        "Title",
        "Abstract",
    ),
    "longlamp_review": (
        "You are the user described in the [User History] above. The User Request below "
        "specifies the product description, the rating you gave, and the summary you wrote. "
        "Write the full Review Text that corresponds to these details. Mimic your detailed, "
        "narrative writing style found in the history. Write a full body review (around "
        "50-100 words), telling the story of your experience.",
        "User Request",
        "Review Content",
    ),
    "longlamp_topic": (
        "You are the user described in the [User History] above. Write a Reddit post about the "
        "topic below. Mimic the user\u2019s vocabulary and tone, but keep the response "
        "relatively short and punchy (around 100-200 words). Do not write a wall of text.",
        "Topic",
        "Post Content",
    ),
}

POLICIES = ("rag", "persona", "persona_rag")


def _task_key(task) -> str:
    from ttp_diag.gen.data import get_task  # light module, no torch

    return get_task(task).name


def _clip(text: str, max_chars: int | None) -> str:
    text = " ".join(str(text).split()) if max_chars is not None else str(text).strip()
    if max_chars is not None and len(text) > max_chars:
        return text[: max_chars - 3].rstrip() + "..."
    return text


def reward_model_prompt(
    task: str | TaskSpec,
    query_input: str,
    candidate: str,
    history: Sequence[Mapping] | None = None,
) -> str:
    """The reward-model input text of appendix E.2.

    ::

        [Instruction]: {task_instruction}
        [Input]: {query}
        [Document]: {candidate}

    Parameters
    ----------
    task : str or TaskSpec
        ``"lamp4"``, ``"lamp5"``, ``"longlamp_abstract"``, ``"longlamp_review"``,
        ``"longlamp_topic"`` (aliases as in :func:`ttp_diag.gen.data.get_task`).
    query_input : str
        The query the candidate answers (for LaMP-4 the article text).
    candidate : str
        The candidate output being judged.
    history : sequence of (input, output) pairs or str, optional
        The paper's reward models see no history ("no retrieval-based method is used for RM
        training"); when given, a ``[History]:`` block of past pairs is prepended, for
        experiments that want it.

    Returns
    -------
    str

    Examples
    --------
    >>> p = reward_model_prompt("lamp4", "Cats rule the web.", "Cats Win")
    >>> p.splitlines()[0].startswith("[Instruction]: Judge how good the Document is as a headline")
    True
    >>> for line in p.splitlines()[1:]:
    ...     print(line)
    [Input]: Cats rule the web.
    [Document]: Cats Win
    """
    key = _task_key(task)
    if candidate is None:
        raise ConfigError("candidate is None; pass the candidate text (an empty string is allowed)")
    lines = []
    if history:
        if isinstance(history, str):
            lines.append(f"[History]: {history.strip()}")
        else:
            pairs = "\n".join(f"- Input: {a}\n  Output: {b}" for a, b in history)
            lines.append(f"[History]:\n{pairs}")
    lines += [
        f"[Instruction]: {RM_INSTRUCTIONS[key]}",
        f"[Input]: {str(query_input).strip()}",
        f"[Document]: {str(candidate).strip()}",
    ]
    return "\n".join(lines)


def format_history(
    task: str | TaskSpec, examples: Sequence[Mapping], max_chars: int | None = None
) -> str:
    """Retrieved history examples as input/output pairs under the task's own markers.

    Parameters
    ----------
    task : str or TaskSpec
    examples : sequence of mappings with ``body`` and ``output``
        As returned by :func:`ttp_diag.gen.retrieval.retrieve_history`.
    max_chars : int, optional
        Truncate each body and output to this many characters (long-form tasks).

    Examples
    --------
    >>> print(format_history("lamp4", [{"body": "A cat.", "output": "Cat!"}]))
    [User History]
    ### Article: A cat.
    ### Headline: Cat!
    """
    key = _task_key(task)
    _, inp, out = POLICY_INSTRUCTIONS[key]
    if not examples:
        return ""
    blocks = [
        f"### {inp}: {_clip(e['body'], max_chars)}\n### {out}: {_clip(e['output'], max_chars)}"
        for e in examples
    ]
    return "[User History]\n" + "\n\n".join(blocks)


def policy_prompt(
    task: str | TaskSpec,
    query_body: str,
    *,
    policy: str = "rag",
    history: Sequence[Mapping] = (),
    persona: str | None = None,
    max_chars: int | None = None,
) -> str:
    """The policy prompt of appendix E.1.

    Parameters
    ----------
    task : str or TaskSpec
    query_body : str
        The query text without the benchmark's instruction prefix (the article, abstract,
        title, product request or topic).
    policy : {"rag", "persona", "persona_rag"}
        RAG puts the retrieved history in ``{history}``; Persona puts the user's style
        description there; Persona+RAG puts both (persona first).
    history : sequence of mappings
        Retrieved examples (``body``, ``output``), most similar first.
    persona : str, optional
        Required for the persona policies.
    max_chars : int, optional
        Truncation of history texts and the query (long-form tasks).

    Examples
    --------
    >>> print(policy_prompt("lamp4", "Dogs bark.", history=[{"body": "A cat.", "output": "Cat!"}]))
    [User History]
    ### Article: A cat.
    ### Headline: Cat!
    <BLANKLINE>
    ### Instruction: Generate a headline for the following article. Match the user’s headline style.
    ### Article: Dogs bark.
    ### Headline:
    """
    key = _task_key(task)
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r}; choose one of {POLICIES}")
    instr, inp, out = POLICY_INSTRUCTIONS[key]
    parts = []
    if policy in ("persona", "persona_rag"):
        if not persona or not str(persona).strip():
            raise ConfigError(
                f"policy {policy!r} needs a persona; build them with generate_personas()"
            )
        parts.append(f"[User Style]\n{str(persona).strip()}")
    if policy in ("rag", "persona_rag"):
        h = format_history(key, history, max_chars)
        if h:
            parts.append(h)
    parts.append(f"### Instruction: {instr}\n### {inp}: {_clip(query_body, max_chars)}\n### {out}:")
    return "\n\n".join(parts)


def persona_request(
    task: str | TaskSpec, samples: Sequence[Mapping], max_chars: int | None = 300
) -> str:
    """The prompt asking the generator to describe a user's style from history samples.

    Parameters
    ----------
    task : str or TaskSpec
    samples : sequence of mappings with ``body`` and ``output``
        The paper uses 15 history samples.
    max_chars : int, optional
        Truncation of each sample.

    Examples
    --------
    >>> "style" in persona_request("lamp4", [{"body": "A cat.", "output": "Cat!"}])
    True
    """
    key = _task_key(task)
    _, inp, out = POLICY_INSTRUCTIONS[key]
    if not samples:
        raise ConfigError("persona_request needs at least one history sample")
    shown = "\n\n".join(
        f"{inp}: {_clip(s['body'], max_chars)}\n{out}: {_clip(s['output'], max_chars)}"
        for s in samples
    )
    return (
        f"Here are {len(samples)} examples written by one user ({inp.lower()} and the user's "
        f"{out.lower()}).\n\n{shown}\n\n"
        f"Describe this user's writing style for the {out.lower()} in 3 to 5 sentences: tone, "
        "length, vocabulary, punctuation and recurring patterns. Write only the description."
    )


def generate_personas(
    backend: GenerationBackend,
    task: str | TaskSpec,
    samples_by_user: Mapping[str, Sequence[Mapping]],
    *,
    temperature: float = 0.7,
    top_p: float = 0.9,
    max_new_tokens: int = 160,
    seed: int = 0,
) -> dict[str, str]:
    """Write one style description per user with the generator (once per user).

    Parameters
    ----------
    backend : GenerationBackend
    task : str or TaskSpec
    samples_by_user : mapping user_id -> samples
        Take them from the user's *training* history (e.g. the 15 latest train items) so
        that no validation gold reaches the persona.

    Returns
    -------
    dict
        ``user_id`` -> persona text.

    Examples
    --------
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> samples = [{"body": "A storm hits the coast.", "output": "Storm Hits Coast"}]
    >>> personas = generate_personas(tiny_random_backend(), "lamp4", {"u1": samples},
    ...                              max_new_tokens=8)
    >>> list(personas), type(personas["u1"]).__name__
    (['u1'], 'str')
    """
    users = list(samples_by_user)
    prompts = [persona_request(task, samples_by_user[u]) for u in users]
    # A persona is several sentences: switch off first-line truncation for this call.
    first_line = getattr(backend, "first_line", None)
    if first_line:
        backend.first_line = False
    try:
        outs = backend.generate(
            prompts,
            n=1,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
        )
    finally:
        if first_line:
            backend.first_line = first_line
    return {u: o[0].strip() for u, o in zip(users, outs, strict=True)}
