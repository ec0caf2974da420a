"""ARGS, policy scores and ICL of the evaluation suite (issue 10)."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttp_diag.gen.backends import tiny_random_backend  # noqa: E402
from ttp_diag.gen.evaluation.args import args_decode, prefix_rewards, select_lambda  # noqa: E402
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
    lp = pm.token_logprobs(["hello", "a much longer prompt here"], ["wor", "ld"])
    for p, c, got in [("hello", "wor", lp[0]), ("a much longer prompt here", "ld", lp[1])]:
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
    lam, grid = select_lambda(p, [0.0, 1.0, 3.0])
    assert grid["accuracy"].tolist() == [0.0, 0.5, 1.0] and lam == 3.0
