"""End-to-end evaluation runner on a tiny pipeline run (issue 10): every method, resume,
tables, figure, CLI and bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ttp_diag.gen.evaluation.runner import EvalConfig  # noqa: E402
from ttp_diag.gen.evaluation.split import EvaluationInputError  # noqa: E402

ALL = ["zero_shot", "icl", "icl_rag", "args_global", "args_prob_sampled", "bon_prob",
       "bon_global", "judge_pointwise", "judge_pairwise", "lora", "lora_bon_prob"]


class HashEncoder:
    """Deterministic bag-of-words embeddings: no model download, similar texts stay close."""

    def encode(self, texts):
        out = np.zeros((len(texts), 64))
        for i, t in enumerate(texts):
            for w in str(t).lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
        out[:, 0] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from test_pipeline import _config, _write_users

    from ttp_diag.gen.pipeline import run_pipeline
    from ttp_diag.gen.reward_models import make_tiny_backbone

    tmp = tmp_path_factory.mktemp("evalrun")
    bb = make_tiny_backbone(tmp / "bb", hidden_size=16)
    data = _write_users(tmp / "users.jsonl", n_users=4, n_items=10)
    cfg = _config(data, bb, top_k_users=4, rm_kinds=["global", "prob"], first_line=False)
    run_pipeline(cfg, tmp / "run")
    return tmp / "run"


def _cfg(**kw):
    base = dict(methods=ALL, n_train_users=1, max_support=6, icl_ks=[2], lambda_grid=[0.0, 1.0],
                args_top_k=4, max_new_tokens=4, lora_epochs=1, lora_n=3, n_boot=50,
                minilm=False, progress=False, max_lambda_pairs=8)
    base.update(kw)
    return EvalConfig(**base)


def test_every_method_end_to_end_and_resume(run_dir):
    from ttp_diag.gen.evaluation.results import run_evaluation

    s = run_evaluation(run_dir, _cfg(), encoder=HashEncoder())
    ev = run_dir / "eval"
    from ttp_diag.cli.evaluate import write_eval_verdict

    write_eval_verdict(s)  # what `ttp-diag evaluate` prints first and writes
    page = (ev / "verdict.md").read_text()
    assert "against zero_shot" in page and "rho_eff" in page
    res = pd.read_parquet(ev / "results.parquet")
    assert list(res.columns) == ["method", "user_id", "query_id", "metric", "value"]
    got = set(res["method"])
    assert set(ALL) | {"bon_random", "bon_oracle", "lora_random"} <= got
    assert set(res["user_id"]) == set(s["adapt_users"]) and len(s["adapt_users"]) == 3
    assert res["value"].between(0, 1).all()
    # The oracle is never beaten at the full pool; random is the pool mean.
    rw = res[res["metric"] == "reward"].pivot_table(index="query_id", columns="method",
                                                    values="value")
    for m in ("bon_prob", "bon_global", "judge_pointwise", "judge_pairwise", "bon_random"):
        assert (rw[m] <= rw["bon_oracle"] + 1e-12).all()
    up = pd.read_parquet(ev / "upstream.parquet")
    for metric in ("rm_accuracy", "policy_accuracy", "win_rate", "true_win_rate", "rho_eff"):
        assert metric in set(up["metric"]), metric
    # Accuracies per pair source add up to the pooled one (pair-count weighted), per user.
    for base in ("rm_accuracy", "policy_accuracy"):
        pooled = up[up["metric"] == base].set_index(["method", "user_id"])
        parts = up[up["metric"].isin([f"{base}_hard_negative", f"{base}_candidates"])]
        assert len(parts), base
        wins = (parts["value"] * parts["n"]).groupby([parts["method"], parts["user_id"]]).sum()
        n = parts.groupby(["method", "user_id"])["n"].sum()
        assert (n == pooled.loc[n.index, "n"]).all()
        np.testing.assert_allclose(wins / n, pooled.loc[n.index, "value"], atol=1e-12)
    t2 = pd.read_csv(ev / "tables" / "table2_rm_vs_policy.csv")
    assert {"rm_accuracy", "policy_accuracy"} <= set(t2.columns)
    assert any(c.endswith(("_hard_negative", "_candidates")) for c in t2.columns)
    t4 = pd.read_csv(ev / "tables" / "table4_accuracy_wide.csv")
    assert list(t4["metric"][:2]) == ["rm_accuracy", "policy_accuracy"] and len(t4) > 2
    # The judge scores are a usable score table for the exact Best-of-N engine.
    import ttp_diag

    js = pd.read_parquet(ev / "judge_scores.parquet")
    c = ttp_diag.bon_curve(js, "score_judge_pairwise", [1, 2], pool="clip")
    assert len(c) == 2
    grid = pd.read_csv(ev / "lambda_grid.csv")
    assert set(grid["rm"]) == {"global", "prob"} and grid["chosen"].sum() == 2
    for t in ("generation_quality", "table2_rm_vs_policy", "table4_accuracy_wide",
              "table5_win_rate", "table6_rank_agreement"):
        assert (ev / "tables" / f"{t}.csv").is_file() and (ev / "tables" / f"{t}.md").is_file()
    t6 = pd.read_csv(ev / "tables" / "table6_rank_agreement.csv")
    assert {"kendall_tau", "spearman_rho", "pearson_r"} == set(t6["statistic"])
    # one point per reward model within a decoding family; outcomes are no predictors
    assert (t6["n_points"] >= 1).all() and "family" in t6.columns
    assert not {"capture", "true_win_rate"} & set(t6["upstream"])
    t5 = pd.read_csv(ev / "tables" / "table5_win_rate.csv")
    pool_rows = t5[t5["comparison"] == "random draw from the pool"]
    assert len(pool_rows) and pool_rows["own_score_ceiling"].notna().all()
    assert t5.loc[t5["comparison"] == "zero-shot answer", "own_score_ceiling"].isna().all()
    assert "policy_accuracy_length_norm" in set(up.loc[up["method"].str.startswith("args_"),
                                                       "metric"])
    assert (ev / "figures" / "comparison.png").stat().st_size > 10_000
    split = json.loads((ev / "user_split.json").read_text())
    assert split["seed"] == 0 and len(split["train_users"]) == 1
    # Resume: a second run regenerates nothing.
    gens = sorted((ev / "generations").rglob("*.parquet"))
    mt = {p: p.stat().st_mtime_ns for p in gens}
    run_evaluation(run_dir, _cfg(), encoder=HashEncoder())
    assert {p: p.stat().st_mtime_ns for p in gens} == mt
    with pytest.raises(EvaluationInputError, match="other settings"):
        run_evaluation(run_dir, _cfg(seed=5), encoder=HashEncoder())


def test_args_reward_is_divided_by_the_rms_within_query_spread(run_dir):
    from ttp_diag.gen.evaluation.results import run_evaluation
    from ttp_diag.gen.evaluation.runner import Evaluation

    ev = Evaluation(run_dir, _cfg(), encoder=HashEncoder())
    sc = pd.read_parquet(run_dir / "scores.parquet")
    sc = sc[sc["split"] == "train"]
    for kind in ("global", "prob"):
        want = sc.groupby("query_id")[f"score_{kind}"].std().median()
        assert ev.reward_scale(kind) == pytest.approx(want, rel=1e-12)
        body, user = "A headline about cats.", sc["user_id"].iloc[0]
        raw = ev.reward_fn(kind, body, user)(["cats", "dogs and cats"])
        np.testing.assert_allclose(ev.reward_fn(kind, body, user, scaled=True)(
            ["cats", "dogs and cats"]), raw / want, rtol=1e-12)
    assert Evaluation(run_dir, _cfg(args_reward_scale="raw"),
                      encoder=HashEncoder()).reward_scale("prob") == 1.0
    # the folder's lambda and ARGS texts were made with one scale: another is refused
    with pytest.raises(EvaluationInputError, match="args_reward_scale"):
        run_evaluation(run_dir, _cfg(args_reward_scale="raw"), encoder=HashEncoder())
    with pytest.raises(EvaluationInputError, match="args_reward_scale='zscore'"):
        run_evaluation(run_dir, _cfg(args_reward_scale="zscore"), encoder=HashEncoder())


def test_bad_inputs_name_the_value_and_the_fix(run_dir):
    from ttp_diag.gen.evaluation.results import run_evaluation

    with pytest.raises(EvaluationInputError, match="unknown method 'args_prb'.*did you mean"):
        run_evaluation(run_dir, _cfg(methods=["args_prb"]), encoder=HashEncoder())
    with pytest.raises(EvaluationInputError, match="reward model 'det' is not in this run"):
        run_evaluation(run_dir, _cfg(methods=["bon_det"]), encoder=HashEncoder())
    with pytest.raises(EvaluationInputError, match="lambda grid value -1.0 is negative"):
        run_evaluation(run_dir, _cfg(lambda_grid=[-1.0]), encoder=HashEncoder())


def test_k_larger_than_support_is_refused(run_dir, tmp_path):
    import shutil

    from ttp_diag.gen.evaluation.results import run_evaluation

    d = tmp_path / "run"
    shutil.copytree(run_dir, d, ignore=shutil.ignore_patterns("eval"))
    with pytest.raises(EvaluationInputError, match="k=50 is larger than user .*support set"):
        run_evaluation(d, _cfg(methods=["icl"], icl_ks=[50]), encoder=HashEncoder())


def test_cli_evaluate_unknown_method(run_dir, capsys):
    from ttp_diag.cli import main
    from ttp_diag.exceptions import ConfigError, TtpDiagError, exit_code

    rc = main(["evaluate", "--run-dir", str(run_dir), "--methods", "zero_shot,nope"])
    # an evaluation input error is a ConfigError: the settings exit code, not the generic 1
    assert issubclass(EvaluationInputError, TtpDiagError)
    assert issubclass(EvaluationInputError, ConfigError)
    assert issubclass(EvaluationInputError, ValueError)
    assert rc == exit_code(ConfigError("x")) == 7
    assert "unknown method 'nope'" in capsys.readouterr().err
    # --adapt-models: a family without adapt() and a --set for a model not adapted, by name
    rc = main(["evaluate", "--run-dir", str(run_dir), "--adapt-models", "det"])
    assert rc == 7 and "adapt model 'det' has no adapt()" in capsys.readouterr().err
    rc = main(["evaluate", "--run-dir", str(run_dir), "--set", "lore.epochs=3"])
    assert rc == 7 and "lore is not among the models" in capsys.readouterr().err


def test_evaluate_adapts_new_users_by_the_protocol(run_dir, tmp_path):
    """Issue 20, defect 5: ``adapt_models`` fits a zoo family on the training users' pairs
    only and adapts each adaptation user from its support pairs, shared parameters frozen;
    its Best-of-N selects by the adapted user's own score."""
    import shutil

    from ttp_diag.exceptions import ConfigError
    from ttp_diag.gen.evaluation.results import run_evaluation
    from ttp_diag.gen.evaluation.runner import Evaluation
    from ttp_diag.gen.reward_models import LoRE
    from ttp_diag.gen.reward_models.base import rm_context

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("eval"))
    bb = str(run_dir.parent / "bb")
    lore = {"lore": {"backbone": bb, "max_length": 64, "epochs": 3}}
    cfg = _cfg(methods=["zero_shot", "bon_lore", "bon_prob"], adapt_models=["lore"],
               adapt_settings=lore)
    s = run_evaluation(run, cfg, encoder=HashEncoder())
    ev = Evaluation(run, cfg, encoder=HashEncoder())
    m = LoRE.load(run / "eval" / "rm" / "lore")
    split = ev.split()
    assert m.adapted_users_ == split.adapt_users == s["adapt_users"]
    # the shared parameters are those of a model fitted on the training users' pairs alone
    pairs = pd.read_parquet(run / "eval" / "pairs.parquet")
    p = pairs.assign(prompt=[rm_context("lamp4", b) for b in pairs["prompt"]])
    ref = LoRE(seed=0, **lore["lore"]).fit(p[p["split"] == "train"])
    assert set(ref.users_) == set(split.train_users)
    got, want = m.module_.state_dict(), ref.module_.state_dict()
    for k, v in want.items():
        n = len(ref.users_)
        assert torch.equal(got[k][:n] if k.startswith("user_") else got[k], v), k
    # Best-of-N by the adapted user's own scores of the pool
    pool = ev.pool()
    res = pd.read_parquet(run / "eval" / "results.parquet")
    for u in split.adapt_users:
        for qi in split.items_in("query", u)["item_id"]:
            g = pool[pool["query_id"] == qi]
            sc = m.score(g["text"].astype(str).tolist(), [u] * len(g),
                         prompts=[rm_context("lamp4", b) for b in g["body"]])
            np.testing.assert_allclose(sc, g["score_lore"], rtol=1e-5, atol=1e-6)
            best = g["reward"].to_numpy()[sc == sc.max()].mean()
            got_r = res.query("method == 'bon_lore' and query_id == @qi and metric == 'reward'")
            assert got_r["value"].iloc[0] == pytest.approx(best)
    up = pd.read_parquet(run / "eval" / "upstream.parquet")
    assert {"rm_accuracy", "rho_eff"} <= set(up.loc[up["method"] == "bon_lore", "metric"])
    # a changed setting of an adapted model is refused; families without adapt() too
    bad = dict(lore["lore"], epochs=4)
    with pytest.raises(EvaluationInputError, match="adapt_settings.lore"):
        run_evaluation(run, _cfg(methods=["zero_shot", "bon_lore"], adapt_models=["lore"],
                                 adapt_settings={"lore": bad}), encoder=HashEncoder())
    for name in ("det", "prob"):
        with pytest.raises(ConfigError, match=f"adapt model '{name}'"):
            run_evaluation(run, _cfg(methods=["zero_shot"], adapt_models=[name]),
                           encoder=HashEncoder())
