"""ARGS, policy scores and ICL of the evaluation suite (issue 10)."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttp_diag.gen.backends import tiny_random_backend  # noqa: E402
from ttp_diag.gen.evaluation.guided_decoding import args_decode, prefix_rewards, select_lambda  # noqa: E402
from ttp_diag.gen.evaluation.metrics import score_base  # noqa: E402
from ttp_diag.gen.evaluation.policy import (  # noqa: E402
    PolicyModel,
    icl_prompt,
    select_demos,
)
from ttp_diag.gen.evaluation.split import EvaluationInputError  # noqa: E402


@pytest.fixture(scope="module")
def pm():
    return PolicyModel(tiny_random_backend(seed=3))


@pytest.mark.parametrize("prompt", ["Dogs bark at night", "x", "Headline: a cat"])
def test_args_lambda0_equals_greedy_token_for_token(pm, prompt):
    ids = torch.tensor([pm.prompt_ids(prompt)])
    ref = pm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                            max_new_tokens=20, pad_token_id=0)[0, ids.shape[1]:].tolist()
    ref = ref[: ref.index(2)] if 2 in ref else ref  # our decoder drops the EOS token
    calls = []

    def rm(texts):
        calls.append(texts)
        return np.arange(len(texts), dtype=float)

    out = args_decode(pm, prompt, reward_fn=rm, lam=0.0, top_k=5, max_new_tokens=20,
                      first_line=False)
    assert out["token_ids"] == ref
    assert not calls  # lambda = 0 never pays for the reward model


def test_args_large_lambda_follows_the_reward_with_one_call_per_step(pm):
    target = "e"
    seen = []

    def rm(texts):
        seen.append(len(texts))
        return np.array([float(t.count(target)) for t in texts])

    out = args_decode(pm, "ab", reward_fn=rm, lam=1e3, top_k=pm.tokenizer.vocab_size,
                      max_new_tokens=6, first_line=False)
    assert out["text"] == target * 6
    assert out["n_reward_calls"] == 6 and set(seen) == {pm.tokenizer.vocab_size}


def test_args_sampled_is_seeded(pm):
    rm = lambda texts: np.zeros(len(texts))  # noqa: E731
    a = args_decode(pm, "ab", reward_fn=rm, lam=1.0, sample=True, seed=1, first_line=False,
                    max_new_tokens=8)
    b = args_decode(pm, "ab", reward_fn=rm, lam=1.0, sample=True, seed=1, first_line=False,
                    max_new_tokens=8)
    assert a["token_ids"] == b["token_ids"]
    with pytest.raises(EvaluationInputError, match="lambda=-0.5"):
        args_decode(pm, "ab", reward_fn=rm, lam=-0.5)


def test_token_logprobs_match_a_manual_forward(pm):
    prompts = ["hello", "a much longer prompt here", "hello"]
    comps = ["wor", "ld", "a longer completion"]  # shared prompt, unequal lengths
    lp = pm.token_logprobs(prompts, comps)
    for p, c, got in zip(prompts, comps, lp, strict=True):
        a, b = pm.prompt_ids(p), pm.completion_ids(c)
        with torch.no_grad():
            logits = pm.model(input_ids=torch.tensor([a + b])).logits[0]
        ref = torch.log_softmax(logits, -1)[torch.arange(len(a) - 1, len(a) + len(b) - 1),
                                            torch.tensor(b)].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5)
    assert score_base(lp[0]) == pytest.approx(lp[0].mean())


def test_prefix_rewards_score_each_prefix(pm):
    r = prefix_rewards(pm, "hey", lambda t: np.array([len(x) for x in t], float))
    assert r.tolist() == [1.0, 2.0, 3.0]


def test_icl_k0_equals_zero_shot(pm):
    sup = pd.DataFrame({"body": ["a b", "c d"], "output": ["A", "C"], "position": [0, 1]})
    demos = select_demos(sup, "q", 0)
    assert icl_prompt("lamp4", "q", demos) == icl_prompt("lamp4", "q")
    z = args_decode(pm, icl_prompt("lamp4", "q"), max_new_tokens=8, first_line=False)
    k0 = args_decode(pm, icl_prompt("lamp4", "q", demos), max_new_tokens=8, first_line=False)
    assert z == k0
    assert len(select_demos(sup, "q", 2, mode="random", seed=0)) == 2
    with pytest.raises(EvaluationInputError, match="k=3 is larger than user 'u7'"):
        select_demos(sup, "q", 3, user="u7")


def test_retrieved_demos_are_the_most_similar():
    class Enc:
        def encode(self, texts):
            v = {"q": [1, 0], "near": [0.9, 0.1], "far": [0, 1], "mid": [0.6, 0.4]}
            e = np.array([v[t] for t in texts], float)
            return e / np.linalg.norm(e, axis=1, keepdims=True)

    sup = pd.DataFrame({"body": ["far", "near", "mid"], "output": ["F", "N", "M"]})
    d = select_demos(sup, "q", 2, mode="retrieved", encoder=Enc())
    assert [x["output"] for x in d] == ["M", "N"]  # most similar last, next to the query


def test_select_lambda_records_grid():
    p = pd.DataFrame({"user_id": ["a", "b"], "lp_chosen": [[-1.0, -1.0], [-3.0]],
                      "lp_rejected": [[-0.5, -0.5], [-1.0]], "r_chosen": [[1.0, 1.0], [1.0]],
                      "r_rejected": [[0.0, 0.0], [0.0]]})
    with pytest.warns(UserWarning, match="largest value tried"):
        lam, grid = select_lambda(p, [0.0, 1.0, 3.0], extend=False)
    assert grid["accuracy"].tolist() == [0.0, 0.5, 1.0] and lam == 3.0
    assert grid["on_edge"].tolist() == [False, False, True]


def _threshold_pairs(wins_above=(), wins_below=()):
    """One single-token pair per threshold: wins iff lambda > t (or lambda < t)."""
    rows = [dict(user_id="a", lp_chosen=[-t], lp_rejected=[0.0], r_chosen=[1.0],
                 r_rejected=[0.0]) for t in wins_above]
    rows += [dict(user_id="a", lp_chosen=[t], lp_rejected=[0.0], r_chosen=[0.0],
                  r_rejected=[1.0]) for t in wins_below]
    return pd.DataFrame(rows)


def test_select_lambda_grows_the_grid_past_its_edge_to_the_brute_force_optimum():
    # accuracy: 1/3 below 3, 2/3 on (3, 15), 3/3 on (15, 30), 2/3 above 30
    p = _threshold_pairs(wins_above=(3.0, 15.0), wins_below=(30.0,))
    fine = np.linspace(0, 60, 601)
    brute = [np.mean([lam > 3, lam > 15, lam < 30]) for lam in fine]
    lam, grid = select_lambda(p, [0.0, 1.0, 2.0, 5.0])
    # 5 is the edge and ties 10, so the grid grows through the plateau to 20, then 40 drops
    assert grid["lam"].tolist() == [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0]
    assert grid["extended"].tolist() == [False] * 4 + [True] * 3
    assert lam == 20.0 and 15 < lam < 30
    assert grid.loc[grid["lam"] == lam, "accuracy"].item() == pytest.approx(max(brute))
    assert not grid["on_edge"].any()
    # without growth the edge value is kept and flagged
    with pytest.warns(UserWarning, match="lambda=5"):
        lam0, g0 = select_lambda(p, [0.0, 1.0, 2.0, 5.0], extend=False)
    assert lam0 == 5.0 and g0["on_edge"].tolist() == [False, False, False, True]


def test_select_lambda_growth_is_bounded_and_leaves_interior_choices_alone():
    p = _threshold_pairs(wins_above=(3.0,))  # best for every lambda > 3: an endless plateau
    lam, grid = select_lambda(p, [0.0, 5.0], max_extensions=2)
    # two values added, then growth stops; the smallest of the tied best is kept (interior)
    assert grid["lam"].tolist() == [0.0, 5.0, 10.0, 20.0] and lam == 5.0
    assert not grid["on_edge"].any()
    p2 = _threshold_pairs(wins_above=(1.0,), wins_below=(4.0,))  # best on (1, 4)
    lam2, g2 = select_lambda(p2, [0.0, 2.0, 8.0])
    assert lam2 == 2.0 and not g2["extended"].any()
    with pytest.raises(EvaluationInputError, match="factor=1"):
        select_lambda(p2, [0.0, 8.0], factor=1)


def test_lora_learns_the_support_outputs_and_leaves_the_base_alone(pm):
    from ttp_diag.gen.evaluation.lora import UserLoRA

    before = {n: p.clone() for n, p in pm.model.named_parameters()}
    lora = UserLoRA(pm, epochs=30, lr=2e-2, batch_size=2, seed=0)
    prompts, outs = ["ab", "cd"], ["zzz", "zzz"]
    base_lp = np.mean([x.mean() for x in pm.token_logprobs(prompts, outs)])
    u = lora.fit_user("u1", prompts, outs)
    lp = np.mean([x.mean() for x in u.token_logprobs(prompts, outs)])
    assert lp > base_lp + 0.4  # q/v adapters of a 32-wide model: +0.6 nats measured
    h = lora.history_["u1"]["losses"]
    assert h[-1] < h[0]
    for n, p in pm.model.named_parameters():
        assert torch.equal(p, before[n])
    # A second user starts from the same initial adapters, not from user 1's.
    u2 = lora.fit_user("u2", ["ab"], ["q"])
    assert lora.history_["u2"]["n_items"] == 1 and u2 is not u
    with pytest.raises(EvaluationInputError, match="no support items"):
        lora.fit_user("u3", [], [])


def test_knockout_with_a_truthful_judge_picks_the_oracle():
    from ttp_diag.gen.evaluation.judges import knockout_scores

    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(2, 17))
        reward = rng.permutation(n).astype(float)
        wins, calls = knockout_scores(n, lambda i, j, r=reward: r[i] - r[j], seed=trial)
        assert calls == n - 1
        assert int(np.argmax(wins)) == int(np.argmax(reward))
        assert wins.max() == np.ceil(np.log2(n)) or wins.max() == np.floor(np.log2(n))


def test_llm_judge_runs_and_is_order_debiased(pm):
    from ttp_diag.gen.evaluation.judges import LLMJudge, persona_context

    j = LLMJudge(pm)
    ctx = persona_context([{"body": "x", "output": "Cats Win"}])
    r = j.rate(ctx, "article", ["Cats Win Again", "zzz"])
    assert r.shape == (2,) and ((r >= 1) & (r <= 10)).all()
    ab, ba = j.compare(ctx, "art", "one", "two"), j.compare(ctx, "art", "two", "one")
    assert ab == pytest.approx(-ba)  # swapping the two texts flips the sign exactly
    wins, calls = j.tournament(ctx, "art", ["a", "b", "c"], seed=0)
    assert calls == 2 and wins.sum() == 2
