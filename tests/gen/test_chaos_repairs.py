"""Damaged run-folder files (issue 9): named, and recomputed on resume where they can be."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ttp_diag.exceptions import CorruptFileError  # noqa: E402

_SCRIPT = Path(__file__).resolve().with_name("chaos.py")
KEY = ["user_id", "query_id", "cand_id"]


def _truncate(p: Path, keep: float = 0.5) -> None:
    p.write_bytes(p.read_bytes()[: int(p.stat().st_size * keep)])


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"user_id": u, "query_id": f"{u}/q{q}", "split": "train", "reward": rng.random(),
             "rm_text": f"text {u} {q} {c} " + "word " * c}
            for u in ("u0", "u1") for q in range(2) for c in range(3)]
    return pd.DataFrame(rows)


def _score(model, t: pd.DataFrame, kind: str) -> np.ndarray:
    texts = t["rm_text"].tolist()
    return np.asarray(model.score(texts, t["user_id"].tolist()) if kind == "det"
                      else model.score(texts))


@pytest.mark.gen
@pytest.mark.parametrize("kind, pattern", [("det", "users/u0-*.safetensors"),
                                           ("global", "weights.safetensors")])
def test_truncated_rm_weights_are_named_and_retrained(tmp_path, caplog, kind, pattern):
    from ttp_diag.gen.reward_models import get_model_class, tiny_backbone
    from ttp_diag.gen.scoring import fit_reward_models

    t = _table()
    kw = dict(kinds=[kind], output_dir=tmp_path, backbone=tiny_backbone(),
              settings={"epochs": 1}, verbose=False)
    before = _score(fit_reward_models(t, **kw)[kind], t, kind)
    f = sorted((tmp_path / kind).glob(pattern))[0]
    _truncate(f)
    # Loading names the file (was: safetensors' SafetensorError traceback)
    with pytest.raises(CorruptFileError, match=f.name):
        get_model_class(kind).load(tmp_path / kind)
    # Fitting again into the same folder retrains the damaged model, with the same result
    with caplog.at_level(logging.WARNING):
        m = fit_reward_models(t, **kw)[kind]
    assert f.name in caplog.text and "Retraining" in caplog.text
    after = _score(m, t, kind)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    get_model_class(kind).load(tmp_path / kind)  # the repaired file loads


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("ttp_chaos_r", _SCRIPT)
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    work = tmp_path_factory.mktemp("run")
    config = chaos.tiny_run_config(work)
    from ttp_diag.gen.pipeline import run_pipeline
    from ttp_diag.gen.run_config import load_config

    run_dir = work / "run"
    run_pipeline(load_config(config), run_dir)
    return load_config(config), run_dir


@pytest.mark.slow
@pytest.mark.gen
@pytest.mark.parametrize("name", ["scores.parquet", "labeled.parquet", "candidates.parquet"])
def test_truncated_run_table_is_named_and_recomputed(finished_run, tmp_path, caplog, name):
    import shutil

    from ttp_diag.gen.pipeline import run_pipeline

    cfg, src = finished_run
    d = tmp_path / "run"
    shutil.copytree(src, d)
    ref = pd.read_parquet(src / "scores.parquet")
    _truncate(d / name)
    if name != "scores.parquet":
        (d / "scores.parquet").unlink()  # make the stage that reads it run again
    with caplog.at_level(logging.WARNING):
        run_pipeline(cfg, d)
    assert name in caplog.text and "recomputing" in caplog.text
    assert list(d.glob(f"{name}.bad-*")), "the damaged file is kept aside"
    got = pd.read_parquet(d / "scores.parquet")
    pd.testing.assert_frame_equal(got.sort_values(KEY).reset_index(drop=True),
                                  ref.sort_values(KEY).reset_index(drop=True))


@pytest.mark.slow
@pytest.mark.gen
def test_truncated_candidate_settings_are_named_and_rewritten(finished_run, tmp_path, caplog):
    import shutil

    from ttp_diag.gen.pipeline import run_pipeline

    cfg, src = finished_run
    d = tmp_path / "run"
    shutil.copytree(src, d)
    ref = pd.read_parquet(src / "scores.parquet")
    _truncate(d / "candidates" / "_settings.json")
    for name in ("candidates.parquet", "labeled.parquet", "scores.parquet"):
        (d / name).unlink()
    with caplog.at_level(logging.WARNING):
        run_pipeline(cfg, d)  # was: a bare JSONDecodeError naming no file
    assert "_settings.json" in caplog.text
    assert list((d / "candidates").glob("_settings.json.bad-*"))
    got = pd.read_parquet(d / "scores.parquet")
    pd.testing.assert_frame_equal(got.sort_values(KEY).reset_index(drop=True),
                                  ref.sort_values(KEY).reset_index(drop=True))


def test_run_dir_naming_a_file_says_what_to_do(tmp_path):
    from ttp_diag.exceptions import RunFolderError
    from ttp_diag.gen.pipeline import run_pipeline
    from ttp_diag.gen.run_config import RunConfig

    f = tmp_path / "afile.txt"
    f.write_text("x")
    cfg = RunConfig(task="lamp4", data_path=str(tmp_path / "u.jsonl"), backend="tiny")
    with pytest.raises(RunFolderError, match=r"afile\.txt is an existing file; give a folder"):
        run_pipeline(cfg, f)
