"""The reward-model contract (issue 20, part A): prompt and response stay separate, new users
are adapted with shared parameters frozen, users without pairs fall back to the population
model, LoRE-Alt alternates per batch, standardisation uses training items only.

Tiny random backbones (BERT hidden 16, Llama hidden 32) keep every test to seconds.
"""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from ttp_diag.exceptions import ConfigError  # noqa: E402
from ttp_diag.gen.evaluation.policy import score_candidates  # noqa: E402
from ttp_diag.gen.reward_models import (  # noqa: E402
    MPU,
    REGISTRY,
    LoRE,
    LoREAlt,
    pairs_from_pools,
)
from ttp_diag.gen.reward_models.base import rm_context  # noqa: E402
from ttp_diag.gen.scoring import add_rm_inputs, fit_reward_models  # noqa: E402

GOOD = ["great", "superb", "fine", "nice"]
BAD = ["awful", "poor", "dull", "weak"]
FILLER = ["the", "a", "cat", "dog", "ran", "sat", "on", "mat", "city", "council", "said"]


def _article(rng, n_words=220):
    """A long article: its E.2 prompt is far longer than any model's max length."""
    return " ".join(rng.choice(FILLER, n_words))


def _table(rng, n_users=2, n_queries=4, n_cands=4, n_words=220):
    """Candidate pools whose reward is planted: a GOOD word beats a BAD word."""
    rows = []
    for u in range(n_users):
        for q in range(n_queries):
            body = _article(rng, n_words)
            for k in range(n_cands):
                good = k % 2 == 0
                word = rng.choice(GOOD if good else BAD)
                text = " ".join([*rng.choice(FILLER, 3), word])
                rows.append(dict(user_id=f"u{u}", query_id=f"u{u}q{q}", cand_id=k,
                                 split="train", body=body, text=text,
                                 reward=(0.8 if good else 0.1) + 0.01 * k))
    return add_rm_inputs(pd.DataFrame(rows), "lamp4", prompt_col="rm_prompt")


_FAST = {"epochs": 2, "adapt_epochs": 2, "max_train_pairs": 16, "max_length": 64,
         "score_batch_size": 8}


def _fit(kind, table, tiny_backbone, tiny_lm):
    lm = kind in ("genarm", "pdpo")
    cls = REGISTRY[kind]
    kw = {k: v for k, v in _FAST.items() if k in cls._param_names()}
    return fit_reward_models(table, kinds=[kind], rm_text_col="text", rm_prompt_col="rm_prompt",
                             backbone=tiny_lm if lm else tiny_backbone,
                             kind_settings={kind: kw}, verbose=False)[kind]


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_family_sees_the_candidate_under_a_long_article(kind, tiny_backbone, tiny_lm):
    """Defect 1: through the evaluation path, three different headlines under one article
    longer than the model's input get three different scores (GenARM and P-DPO used to cut
    the candidate off and give them one score)."""
    rng = np.random.default_rng(0)
    m = _fit(kind, _table(rng), tiny_backbone, tiny_lm)
    body = _article(np.random.default_rng(1), 400)
    cands = ["the cat sat great", "a dog ran poor", "council said nice"]
    s = score_candidates(m, "lamp4", [body] * 3, cands, ["u0"] * 3)
    assert np.isfinite(s).all()
    assert len(np.unique(np.round(s, 12))) == 3, (kind, s)


def test_score_table_scores_responses_after_their_prompts(tiny_backbone):
    from ttp_diag.gen.scoring import score_table

    t = _table(np.random.default_rng(0), n_users=2, n_queries=2)
    fit = fit_reward_models(t, kinds=["global_bt"], rm_text_col="text", rm_prompt_col="rm_prompt",
                            backbone=tiny_backbone, kind_settings={"global_bt": {"epochs": 2}},
                            verbose=False)
    out = score_table(t, fit, rm_text_col="text", rm_prompt_col="rm_prompt")
    want = fit["global_bt"].score(t["text"].tolist(), t["user_id"].tolist(),
                                  prompts=t["rm_prompt"].tolist())
    np.testing.assert_allclose(out["score_global_bt"], want)
    assert (out["text"] == t["text"].to_numpy()).all()
    alone = fit["global_bt"].score(t["text"].tolist(), t["user_id"].tolist())
    assert not np.allclose(alone, want)  # the prompt is read, not dropped


def test_pairs_carry_the_real_prompt_not_the_query_id():
    t = _table(np.random.default_rng(0), n_users=1, n_queries=2)
    p = pairs_from_pools(t, text_col="text", prompt_col="rm_prompt")
    ctx = t.drop_duplicates("query_id").set_index("query_id")["body"].map(
        lambda b: rm_context("lamp4", b))
    assert (p["prompt"] == p["query_id"].map(ctx)).all()
    assert p["prompt"].str.endswith("[Document]:").all()
    assert set(p["chosen"]) <= set(t["text"])  # responses alone, not whole inputs
    assert (pairs_from_pools(t, text_col="rm_text")["prompt"] == "").all()


@pytest.mark.parametrize("kind", ["genarm", "global_bt"])
def test_planted_preference_is_ranked_with_the_real_article_as_context(kind, tiny_backbone,
                                                                       tiny_lm):
    """A model trained (table -> pairs with the real prompt) on a planted preference ranks
    held-out pairs under new long articles through ``score_candidates``."""
    rng = np.random.default_rng(3)
    t = _table(rng, n_users=2, n_queries=10, n_cands=4)
    if kind == "genarm":
        from ttp_diag.gen.reward_models import GenARM

        m = GenARM(tiny_lm, epochs=6, lr=5e-3, max_train_pairs=None, beta=0.5,
                   target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"])
    else:
        m = REGISTRY[kind](tiny_backbone, epochs=60, max_length=64)
    m.fit_table(t, text_col="text", prompt_col="rm_prompt")
    te = _table(np.random.default_rng(4), n_users=1, n_queries=6, n_cands=2, n_words=300)
    s = score_candidates(m, "lamp4", te["body"].tolist(), te["text"].tolist(),
                         te["user_id"].tolist())
    s = s.reshape(-1, 2)  # per query: a GOOD candidate, then a BAD one
    acc = (s[:, 0] > s[:, 1]).mean()
    assert acc >= 5 / 6, (kind, s)


def test_user_without_pairs_falls_back_to_the_population_model(tiny_backbone):
    """Defect 6: a user whose candidates are all within min_gap has no pair; scoring them
    used to raise KeyError in heads.py."""
    rng = np.random.default_rng(0)
    t = _table(rng, n_users=3, n_queries=3)
    t.loc[t.user_id == "u2", "reward"] = 0.5  # no pair above min_gap for u2
    m = MPU(tiny_backbone, epochs=3, max_length=64).fit_table(t, text_col="text",
                                                             prompt_col="rm_prompt")
    assert m.fallback_users_ == ["u2"] and "u2" not in m.users_
    texts, prompts = t["text"].tolist()[:6], t["rm_prompt"].tolist()[:6]
    got = m.score(texts, ["u2"] * 6, prompts=prompts)
    pop = np.mean([m.score(texts, [u] * 6, prompts=prompts) for u in m.users_], axis=0)
    np.testing.assert_allclose(got, pop, rtol=1e-6)
    with pytest.raises(ConfigError, match=r"never-seen.*adapt\(\).*population model"):
        m.score(texts[:1], ["never-seen"], prompts=prompts[:1])


def _planted(seed=0, d=8, n_items=400, users=("t0", "t1", "t2", "t3"), n_pairs=150,
             first_type=0):
    """Two user types with linear rewards a+b (even users) and a-b (odd users); with
    ``first_type=1`` the first user is of the a-b type."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n_items, d))
    a, b = np.eye(d)[0], np.eye(d)[1]
    rows = []
    for k in range(len(users)):
        w = a + b if (k + first_type) % 2 == 0 else a - b
        for _ in range(n_pairs):
            i, j = rng.choice(n_items, 2, replace=False)
            rows.append((i, j) if F[i] @ w > F[j] @ w else (j, i))
    c, r = map(np.array, zip(*rows, strict=True))
    u = np.repeat(list(users), n_pairs)
    return F, c, r, u


@pytest.mark.parametrize("kind", ["mpu", "lore", "pref", "pal"])
def test_adapt_freezes_shared_parameters_and_beats_the_population_model(kind):
    """Defect 5: ``adapt`` fits only the new user's parameters (every other tensor
    bit-identical) and the adapted user ranks held-out pairs of a planted preference
    better than the unadapted population model."""
    F, c, r, u = _planted()
    m = REGISTRY[kind](epochs=60).fit_features(F, c, r, u)
    before = {k: v.clone() for k, v in m.module_.state_dict().items()}
    # the new user has the (a - b) type; 40 support pairs, held-out query pairs after
    Fn, cn, rn, un = _planted(seed=1, users=("new",), n_pairs=200, first_type=1)
    Fa = np.concatenate([F, Fn])
    off = len(F)
    # the unadapted population model: the mean of the training users' rewards
    s_pop = np.mean([m.score_features(Fn, [x] * len(Fn)) for x in m.users_], axis=0)
    acc_pop = (s_pop[cn[40:]] > s_pop[rn[40:]]).mean()
    m.adapt_features(Fa, cn[:40] + off, rn[:40] + off, un[:40])
    assert "new" in m.users_ and "new" not in m.fallback_users_ and m.adapted_users_ == ["new"]
    after = m.module_.state_dict()
    n_old = m.users_.index("new")
    for k, v in before.items():
        w = after[k]
        if k.startswith("user_"):
            assert torch.equal(w[:n_old], v), k
        else:
            assert torch.equal(w, v), k  # shared parameters frozen, bit for bit
    s = m.score_features(Fn, ["new"] * len(Fn))
    acc = (s[cn[40:]] > s[rn[40:]]).mean()
    assert acc > acc_pop + 0.1 and acc > 0.85, (kind, acc, acc_pop)


def test_adapt_from_support_pairs_dataframe_keeps_the_model_frozen(tiny_backbone):
    rng = np.random.default_rng(0)
    t = _table(rng, n_users=3, n_queries=3)
    p = pairs_from_pools(t, text_col="text", prompt_col="rm_prompt")
    m = LoRE(tiny_backbone, epochs=3, max_length=64).fit(p[p.user_id != "u2"])
    before = {k: v.clone() for k, v in m.module_.state_dict().items()}
    m.adapt(p, user="u2")
    assert m.users_[-1] == "u2" and m.adapted_users_ == ["u2"]
    after = m.module_.state_dict()
    assert torch.equal(after["B"], before["B"])
    assert torch.equal(after["user_a"][:2], before["user_a"])
    assert not torch.equal(after["user_a"][2], after["user_a"][:2].mean(0))
    m.adapt(p.iloc[:0], user="u9")  # no support pair: population model, named
    assert m.fallback_users_ == ["u9"]


def test_pdpo_adapt_moves_only_the_new_users_token(tiny_lm):
    from ttp_diag.gen.reward_models import PDPO

    rng = np.random.default_rng(0)
    t = _table(rng, n_users=3, n_queries=2, n_words=30)
    p = pairs_from_pools(t, text_col="text", prompt_col="rm_prompt")
    m = PDPO(tiny_lm, epochs=1, adapt_epochs=2, max_train_pairs=8).fit(p[p.user_id != "u2"])
    lora = {n: q.detach().clone() for n, q in m._lm.named_parameters() if "lora_" in n}
    tok = m._users_emb.detach().clone()
    m.adapt(p, user="u2")
    assert m.users_ == ["u0", "u1", "u2"] and m.adapted_users_ == ["u2"]
    for n, q in m._lm.named_parameters():
        if "lora_" in n:
            assert torch.equal(q, lora[n]), n
    assert torch.equal(m._users_emb[:2], tok)


def test_standardisation_uses_training_items_only():
    F, c, r, u = _planted()
    split = np.where(np.isin(u, ["t3"]), "support", "train")
    m = MPU(epochs=1).fit_features(F * 3 + 1, c, r, u, split)
    items = np.unique(np.concatenate([c[split == "train"], r[split == "train"]]))
    np.testing.assert_allclose(m.feat_mean_, (F * 3 + 1)[items].mean(0), rtol=1e-5)
    assert not np.allclose(m.feat_mean_, (F * 3 + 1).mean(0), rtol=1e-5, atol=1e-4)


def _lore_alt_reference(F, c, r, u, model, *, epochs, bs, lr, wd, seed):
    """LoRE-Alt by hand: per batch one Adam step on the weights, then one on the bases."""
    from ttp_diag.gen.reward_models.losses import bt_loss

    items = np.unique(np.concatenate([c, r]))
    X = torch.tensor((F - F[items].mean(0)) / (F[items].std(0) + 1e-6), dtype=torch.float32)
    torch.manual_seed(seed)
    users = list(dict.fromkeys(u.tolist()))
    mod = model._build(F.shape[1], len(users), len(users))
    opt_w = torch.optim.Adam([mod.user_a], lr=lr, weight_decay=wd)
    opt_b = torch.optim.Adam([mod.B], lr=lr, weight_decay=wd)
    ci, ri = torch.as_tensor(c), torch.as_tensor(r)
    ui = torch.as_tensor([users.index(x) for x in u])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(c), generator=gen)
        for s in range(0, len(c), bs):
            b = perm[s:s + bs]
            for opt in (opt_w, opt_b):
                loss = bt_loss(mod.reward(X[ci[b]], ui[b]), mod.reward(X[ri[b]], ui[b]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return mod


def test_lore_alt_alternates_per_batch_weights_first_and_differs_from_joint_lore():
    F, c, r, u = _planted(n_pairs=60)
    kw = dict(epochs=3, batch_size=64, lr=0.05, weight_decay=1e-4, seed=0)
    alt = LoREAlt(**kw).fit_features(F, c, r, u)
    joint = LoRE(**kw).fit_features(F, c, r, u)
    ref = _lore_alt_reference(F, c, r, u, alt, epochs=3, bs=64, lr=0.05, wd=1e-4, seed=0)
    for name in ("B", "user_a"):
        want = getattr(ref, name).detach()
        np.testing.assert_allclose(getattr(alt.module_, name).detach(), want, atol=1e-5)
        assert (getattr(joint.module_, name).detach() - want).abs().max() > 1e-3
