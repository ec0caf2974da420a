"""``ttp-diag zoo`` end to end on a small planted table with tiny backbones."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")


def _table(seed=0, n_users=6, n_q=6, n_c=4):
    rng = np.random.default_rng(seed)
    words = ["the", "a", "cat", "dog", "ran", "sat", "mat", "city"]
    rows = []
    for u in range(n_users):
        for q in range(n_q):
            body = " ".join(rng.choice(words, 150))
            for k in range(n_c):
                good = k % 2 == 0
                rows.append(dict(user_id=f"u{u}", query_id=f"u{u}q{q}", cand_id=k,
                                 split="val" if q >= n_q - 2 else "train", body=body,
                                 text=" ".join([*rng.choice(words, 3),
                                                "great" if good else "awful"]),
                                 reward=(0.7 if good else 0.1) + 0.02 * k))
    return pd.DataFrame(rows)


def test_zoo_command_runs_the_adaptation_protocol_and_resumes(tmp_path, tiny_backbone, capsys):
    from ttp_diag.cli import main

    t = tmp_path / "t.parquet"
    _table().to_parquet(t)
    out = tmp_path / "zoo"
    argv = ["zoo", "--table", str(t), "--out", str(out), "--models", "lore,global_bt",
            "--adapt-frac", "0.34", "--set", f"lore.backbone={tiny_backbone}",
            "--set", f"global_bt.backbone={tiny_backbone}", "--set", "lore.max_length=64",
            "--set", "global_bt.max_length=64"]
    assert main(argv) == 0
    res = pd.read_csv(out / "zoo_results.csv")
    assert list(res.model) == ["lore", "global_bt"]
    assert ((res.acc_lo <= res.acc_heldout) & (res.acc_heldout <= res.acc_hi)).all()
    assert (res.n_fallback_users == 0).all()
    assert "| lore |" in (out / "zoo_table.md").read_text()
    printed = capsys.readouterr().out
    assert printed.index("Verdict:") < printed.index("model(s):")  # the verdict comes first
    page = (out / "verdict.md").read_text()
    for m in ("lore", "global_bt"):  # one paragraph per model, from its own numbers
        assert f"**{m}**" in page and f"{m} ranks" in page and "over random" in page
    cfg = json.loads((out / "lore" / "config.json").read_text())
    assert len(cfg["adapted_users"]) == 2  # adaptation users, adapted from support pairs
    assert cfg["n_train_users"] == 4
    assert main(argv) == 0  # resumes: both rows reused
    assert capsys.readouterr().out.count("reused") == 2
    # paired accuracy difference on the same pairs, by hand
    pa = pd.read_csv(out / "zoo_paired.csv")
    assert len(pa) == 1 and (pa.a[0], pa.b[0]) == ("lore", "global_bt")
    ha = pd.read_parquet(out / "rows" / "lore.pairs.parquet")["hit"]
    hb = pd.read_parquet(out / "rows" / "global_bt.pairs.parquet")["hit"]
    assert pa["diff"][0] == pytest.approx(ha.mean() - hb.mean())
    assert pa["acc_a"][0] == pytest.approx(res.acc_heldout[0])
    assert pa.ci_low[0] <= pa["diff"][0] <= pa.ci_high[0]

    # A row of an older format (no row_version) is recomputed, the model never retrained:
    # from the cached scores when they are there, else by scoring the saved model.
    weights = out / "lore" / "weights.safetensors"
    mtime = weights.stat().st_mtime_ns
    f = out / "rows" / "lore.json"
    for cached in (True, False):
        row = json.loads(f.read_text())
        row.pop("row_version")
        row.pop("alpha_null")
        f.write_text(json.dumps(row))
        if not cached:
            (out / "rows" / "lore.val.parquet").unlink()
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert ("row recomputed from the cached scores" in printed) == cached
        assert ("scoring the saved model" in printed) == (not cached)
        again = pd.read_csv(out / "zoo_results.csv")
        pd.testing.assert_frame_equal(again.drop(columns=["score_s"]),
                                      res.drop(columns=["score_s"]), rtol=1e-6)
        assert weights.stat().st_mtime_ns == mtime
    # a changed learned setting retrains that model only
    argv[argv.index("lore.max_length=64")] = "lore.max_length=48"
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("reused") == 1 and weights.stat().st_mtime_ns != mtime


def test_zoo_set_refuses_unknown_setting():
    from ttp_diag.cli._args import parse_sets
    from ttp_diag.exceptions import ConfigError

    with pytest.raises(ConfigError, match="no setting 'nope'"):
        parse_sets(["lore.nope=1"], ["lore"])
