"""Metrics of the evaluation suite pinned to hand-computed values (issue 10, item 2)."""

import numpy as np
import pandas as pd
import pytest

from ttp_diag.gen.evaluation.metrics import (
    behavioural_alignment,
    bon_win_rate_ceiling,
    pairwise_accuracy,
    rank_agreement,
    score_base,
    score_rgd,
    win_rate,
)
from ttp_diag.gen.evaluation.policy import GoldRouge, score_candidates
from ttp_diag.gen.evaluation.split import EvaluationInputError


def test_pairwise_accuracy_by_hand():
    p = pd.DataFrame({"user_id": ["a", "a", "a", "a", "b", "b"],
                      "score_chosen": [3, 2, 1, 0, 1, 1],
                      "score_rejected": [1, 2, 2, -1, 0, 1]})
    a = pairwise_accuracy(p).set_index("user_id")
    # a: 1 + 0.5 + 0 + 1 = 2.5 of 4; b: 1 + 0.5 = 1.5 of 2
    assert a.at["a", "accuracy"] == 0.625 and a.at["b", "accuracy"] == 0.75
    assert a.at["__mean_over_users__", "accuracy"] == pytest.approx((0.625 + 0.75) / 2)
    assert a.at["__pooled__", "accuracy"] == pytest.approx(4 / 6)
    s = pairwise_accuracy(p, ties="strict").set_index("user_id")
    assert s.at["a", "accuracy"] == 0.5 and s.at["b", "accuracy"] == 0.5
    with pytest.raises(EvaluationInputError, match="NaN"):
        pairwise_accuracy(p.assign(score_chosen=np.nan))


def test_policy_scores_by_hand():
    assert score_base([-0.5, -1.5]) == -1.0
    # sum_t [log pi + lambda r(prefix)] = (-0.5 + 2*0.1) + (-1.5 + 2*0.4) = -1.0
    assert score_rgd([-0.5, -1.5], [0.1, 0.4], 2.0) == pytest.approx(-1.0)
    assert score_rgd([-0.5, -1.5], [0.1, 0.4], 0.0) == -2.0
    with pytest.raises(EvaluationInputError, match="lambda=-1"):
        score_rgd([-1.0], [0.0], -1)


def test_gold_rouge_reward_model_gives_expected_accuracy_and_win_rate():
    gold = {"art1": "senate passes budget bill", "art2": "storm hits the coast"}
    rm = GoldRouge(gold)
    # Pref-LaMP pairs: chosen = the user's gold, rejected = another item's headline.
    pairs = pd.DataFrame({"user_id": ["u", "u"], "prompt": ["art1", "art2"],
                          "chosen": [gold["art1"], gold["art2"]],
                          "rejected": ["budget talks stall", "coast braces for storm"]})
    sc = score_candidates(rm, "lamp4", pairs["prompt"], pairs["chosen"], pairs["user_id"])
    sr = score_candidates(rm, "lamp4", pairs["prompt"], pairs["rejected"], pairs["user_id"])
    assert (sc == 1.0).all()
    acc = pairwise_accuracy(pairs.assign(score_chosen=sc, score_rejected=sr))
    assert acc["accuracy"].iloc[-1] == 1.0
    # Win rate judged by the truth equals the hand count: outputs vs zero-shot outputs.
    method = ["senate passes bill", "storm"]        # R1: 0.857 vs ...; 0.4
    zero = ["budget", "storm hits the coast today"]  # 0.4; 0.889
    m = score_candidates(rm, "lamp4", ["art1", "art2"], method, ["u", "u"])
    z = score_candidates(rm, "lamp4", ["art1", "art2"], zero, ["u", "u"])
    assert m[0] == pytest.approx(6 / 7) and z[0] == pytest.approx(0.4)
    assert m[1] == pytest.approx(0.4) and z[1] == pytest.approx(8 / 9)
    assert win_rate(m, z) == 0.5


def test_score_candidates_takes_score_not_the_removed_predict():
    class OnlyPredict:  # the pre-0.1.0 interface (predict), no longer an alias of score
        def predict(self, texts, users=None):
            return np.zeros(len(texts))

    class Scorer:
        def score(self, texts, users):
            return np.array([len(t) for t in texts], float)

    got = score_candidates(Scorer(), "lamp4", ["a"], ["xyz"], ["u"])
    assert got.shape == (1,) and got[0] > len("xyz")  # the E.2 input holds the candidate
    with pytest.raises(EvaluationInputError, match=r"OnlyPredict has neither score\(texts"):
        score_candidates(OnlyPredict(), "lamp4", ["a"], ["xyz"], ["u"])


def test_behavioural_alignment_against_rouge_score_package():
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    gen = ["the cat sat on the mat", "a b c", ""]
    gold = ["the cat lay on a mat", "c b a", "something"]
    got = behavioural_alignment(gen, gold, minilm=False)
    sc = rs.RougeScorer(["rouge1", "rougeL"])
    for i in range(3):
        ref = sc.score(gold[i], gen[i])
        assert got["rouge1"][i] == pytest.approx(ref["rouge1"].fmeasure)
        assert got["rougeL"][i] == pytest.approx(ref["rougeL"].fmeasure)
    assert got["rougeL"][1] == pytest.approx(1 / 3)  # LCS of "a b c" and "c b a" is 1

    class Enc:
        def encode(self, texts):
            e = np.array([[1.0, 0.0] if "cat" in t else [0.6, 0.8] for t in texts])
            return e

    m = behavioural_alignment(["cat", "dog"], ["cat!", "cat"], encoder=Enc())["minilm"]
    assert m.tolist() == pytest.approx([1.0, 0.6])


def test_bon_ceiling_matches_simulation():
    rng = np.random.default_rng(0)
    for n in (1, 4, 16):
        best = rng.normal(size=(100_000, n)).max(1)
        other = rng.normal(size=100_000)
        assert win_rate(best, other) == pytest.approx(bon_win_rate_ceiling(n), abs=0.005)


def test_rank_agreement_by_hand_and_bootstrap():
    rows = []
    for m, up, q in [("a", 1, 1), ("b", 2, 3), ("c", 3, 2), ("d", 4, 4)]:
        for u, noise in [(f"u{i}", 0.0) for i in range(5)]:
            rows += [(m, u, "acc", up + noise), (m, u, "rouge1", q + noise)]
    d = pd.DataFrame(rows, columns=["method", "user_id", "metric", "value"])
    r = rank_agreement(d, ["acc"], "rouge1", ci=0.9, n_boot=200).set_index("statistic")
    # 5 concordant, 1 discordant pair of methods: tau = 4/6; rho = 1 - 6*2/(4*15) = 0.8
    assert r.at["kendall_tau", "estimate"] == pytest.approx(2 / 3)
    assert r.at["spearman_rho", "estimate"] == pytest.approx(0.8)
    assert r.at["pearson_r", "estimate"] == pytest.approx(0.8)
    assert (r["n_methods"] == 4).all() and (r["n_users"] == 5).all()
    # identical users: every bootstrap replicate equals the estimate
    assert r.at["kendall_tau", "ci_low"] == pytest.approx(2 / 3)
    # fewer than 5 users: no interval (ttp_diag.stats.MIN_USERS_FOR_CI), the estimate stays
    few = d[d["user_id"].isin(["u0", "u1"])]
    r2 = rank_agreement(few, ["acc"], "rouge1", ci=0.9, n_boot=50).set_index("statistic")
    assert r2.at["kendall_tau", "estimate"] == pytest.approx(2 / 3)
    assert np.isnan(r2["ci_low"]).all()
    two = d[d["method"].isin(["a", "b"])]
    assert np.isnan(rank_agreement(two, ["acc"], "rouge1", ci=None)["estimate"]).all()
    with pytest.raises(EvaluationInputError, match="upstream metric 'nope'"):
        rank_agreement(d, ["nope"], "rouge1")


def test_method_summary_interval_is_a_bootstrap_and_ignores_other_rows():
    from ttp_diag.gen.evaluation.tables import method_summary

    v = [0.1, 0.4, 0.2, 0.9, 0.4]
    d = pd.DataFrame({"method": "m", "user_id": list("abcde"), "metric": "x", "value": v})
    s1 = method_summary(d, n_boot=4000, seed=3).iloc[0]
    assert s1["mean"] == pytest.approx(0.4) and s1["n_users"] == 5
    # the percentile interval of the mean over users: close to an independent bootstrap
    rng = np.random.default_rng(11)
    ref = np.quantile(rng.choice(v, size=(20000, 5)).mean(1), [0.025, 0.975])
    assert s1["ci_low"] == pytest.approx(ref[0], abs=0.03)
    assert s1["ci_high"] == pytest.approx(ref[1], abs=0.03)
    # adding another method and metric leaves this row's interval exactly where it was
    more = pd.concat([d.assign(method="a"), d, d.assign(metric="aa", value=d["value"] * 2)])
    s2 = method_summary(more, n_boot=4000, seed=3).set_index(["method", "metric"])
    assert s2.loc[("m", "x"), "ci_low"] == s1["ci_low"]
    assert s2.loc[("m", "x"), "ci_high"] == s1["ci_high"]
    # two methods with the same per-user values get the same interval (shared resamples)
    twin = pd.concat([d, d.assign(method="twin")])
    s3 = method_summary(twin, n_boot=500, seed=0).set_index("method")
    assert s3.loc["m", ["ci_low", "ci_high"]].tolist() == s3.loc["twin", ["ci_low",
                                                                          "ci_high"]].tolist()
    # fewer than 5 users: the mean, no interval (one rule with the curves' intervals)
    s4 = method_summary(d.iloc[:4], n_boot=100).iloc[0]
    assert s4["n_users"] == 4 and np.isnan(s4["ci_low"]) and np.isnan(s4["ci_high"])


def test_policy_accuracy_length_effect_and_normalised_variant():
    # same per-token log-probability, the chosen answer twice as long: the paper's sum
    # (eqs. 5-6) prefers the shorter rejected answer at lambda = 0, the mean (eq. 4) ties
    chosen, rejected = [-1.0] * 6, [-1.0] * 3
    assert score_rgd(chosen, [0.0] * 6, 0.0) < score_rgd(rejected, [0.0] * 3, 0.0)
    assert score_rgd(chosen, [0.0] * 6, 0.0, length_norm=True) == score_base(chosen)
    rng = np.random.default_rng(0)
    for _ in range(20):  # at lambda = 0 the normalised variant is eq. 4 exactly
        lp = rng.normal(-2, 1, size=rng.integers(1, 9))
        assert score_rgd(lp, rng.random(lp.size), 0.0, length_norm=True) == \
            pytest.approx(score_base(lp), abs=1e-12)
    assert score_rgd([-1.0, -2.0], [0.5, 0.25], 2.0, length_norm=True) == pytest.approx(-0.75)


def test_harmonic_lambda_rule_by_hand():
    from ttp_diag.gen.evaluation.guided_decoding import harmonic_lambda
    from ttp_diag.gen.evaluation.runner import EvalConfig

    g = pd.DataFrame({"lam": [0.0, 1.0, 2.0, 4.0], "accuracy": [0.5, 0.7, 0.9, 0.9],
                      "rouge1": [0.30, 0.30, 0.05, 0.0], "inv_perplexity": [0.2, 0.2, 0.1, 0.1]})
    lam, out = harmonic_lambda(g)
    want = [3 / (1 / a + 1 / b + 1 / c) for a, b, c in
            zip(g["rouge1"][:3], g["inv_perplexity"][:3], g["accuracy"][:3], strict=True)]
    assert out["harmonic_mean"].tolist()[:3] == pytest.approx(want)
    assert out["harmonic_mean"].iloc[3] == 0.0  # a zero component
    assert lam == 1.0  # policy accuracy alone would take 2.0
    tie = g.assign(rouge1=0.3, inv_perplexity=0.2, accuracy=0.5)
    assert harmonic_lambda(tie)[0] == 0.0  # ties: the smallest lambda
    with pytest.raises(EvaluationInputError, match="inv_perplexity"):
        harmonic_lambda(g.drop(columns="inv_perplexity"))
    with pytest.raises(EvaluationInputError, match="args_lambda_rule='best'"):
        EvalConfig(methods=["zero_shot"], args_lambda_rule="best").validate([])
