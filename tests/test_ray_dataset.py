"""bon_curve_dataset(engine="ray"): per-file exact partial sums on a local Ray equal bon_curve."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.exceptions import ConfigError, EngineError, ScoreTableError

NS = [1, 2, 4, 8]


@pytest.fixture(scope="module")
def ray_local(request):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2)
    request.addfinalizer(ray.shutdown)
    return ray


@pytest.fixture(scope="module")
def table():
    t = td.simulate_score_table(n_users=9, n_queries=5, n_candidates=8, seed=3)
    # ties in the score (the engine averages tied rewards) and ragged pools (clip)
    t["score_det"] = t["score_det"].round(1)
    return t[~((t["query_id"] == "user_002/q006") & (t["cand_id"] >= 5))].reset_index(drop=True)


def _write(t: pd.DataFrame, d, parts: list[pd.DataFrame]) -> list[str]:
    d.mkdir(exist_ok=True)
    paths = []
    for i, p in enumerate(parts):
        path = d / f"part-{i}.parquet"
        p.to_parquet(path, row_group_size=17)  # many row groups: queries cross them
        paths.append(str(path))
    return paths


def _by_users(t, cuts):
    """Files of whole queries; user_004's queries are split between two files."""
    q = t["query_id"]
    return [t[(q >= a) & (q < b)] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


CUTS = ["", "user_002", "user_004/q002", "user_007", "~"]


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_partial_sums_equal_bon_curve(tmp_path, table, ray_local, workers):
    _write(table, tmp_path / "d", _by_users(table, CUTS))
    for score in ("score_det", "score_prob", "oracle", "random"):
        want = td.bon_curve(table, score, NS, pool="clip")
        got = td.bon_curve_dataset(tmp_path / "d", score, NS, pool="clip", engine="ray",
                                   workers=workers, rows_per_batch=23)
        assert got["n"].tolist() == NS
        np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12, atol=0)
        assert not np.allclose(got["utility"].iloc[0], got["utility"].iloc[-1]) or \
            score == "random"  # the curve moves with N (the comparison is not vacuous)
    # the pool check sees every file: N above the smallest pool (5) is refused
    with pytest.raises(ScoreTableError, match="N=8 is larger than the candidate pool"):
        td.bon_curve_dataset(tmp_path / "d", "score_det", NS, engine="ray", workers=workers)


def test_ray_accepts_a_file_list_and_rows_scattered_inside_a_file(tmp_path, table, ray_local):
    parts = _by_users(table, CUTS)
    parts[1] = parts[1].sample(frac=1.0, random_state=0)  # a query's rows not contiguous
    files = _write(table, tmp_path / "d", parts)
    want = td.bon_curve(table, "score_det", NS[:3], split=None)
    got = td.bon_curve_dataset(files[::-1], "score_det", NS[:3], split=None, engine="ray")
    np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12, atol=0)
    local = td.bon_curve_dataset(files, "score_det", NS[:3], split=None)  # one stream, in order
    np.testing.assert_allclose(local["utility"], want["utility"], rtol=1e-12, atol=0)


def test_query_in_two_files_is_refused_with_the_fix(tmp_path, table, ray_local):
    q = table["query_id"]
    first = table[q < "user_003/q006"]
    # user_003/q006 split between two files
    rest = table[q >= "user_003/q006"]
    cut = rest.index[rest["query_id"] == "user_003/q006"][3]
    _write(table, tmp_path / "d", [pd.concat([first, rest.loc[:cut - 1]]), rest.loc[cut:]])
    with pytest.raises(ScoreTableError, match=r"query_id 'user_003/q006' in \['part-0.parquet', "
                       r"'part-1.parquet'\].*partitioned by user_id"):
        td.bon_curve_dataset(tmp_path / "d", "score_det", [1, 2], engine="ray")
    # a file's own error comes back as the package error, not Ray's wrapper
    bad = table.assign(score_det=1.0)
    _write(bad, tmp_path / "c", _by_users(bad, CUTS))
    with pytest.raises(ScoreTableError, match="constant"):
        td.bon_curve_dataset(tmp_path / "c", "score_det", [1, 2], engine="ray")


def test_engine_errors(tmp_path, table, monkeypatch):
    table.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="engine must be 'local' or 'ray'"):
        td.bon_curve_dataset(tmp_path / "t.parquet", "score_det", [1], engine="dask")
    for bad in (0, 1.5, "2", True):
        with pytest.raises(EngineError, match="workers must be a whole number >= 1"):
            td.bon_curve_dataset(tmp_path / "t.parquet", "score_det", [1], engine="ray",
                                 workers=bad)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(EngineError, match=r"pip install 'ttp-diag\[ray\]'") as err:
        td.bon_curve_dataset(tmp_path / "t.parquet", "score_det", [1], engine="ray")
    assert isinstance(err.value, ConfigError)
    assert "ray" not in sys.modules or sys.modules["ray"] is None
