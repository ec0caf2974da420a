"""Every README command runs verbatim, and the README's numbers about the demo are the
report's (issue 22).

* The ``<!-- first-steps -->`` block is run line by line in an empty folder, as a new user
  would (``ttp-diag demo --export-table``, then ``analyze``, ``figures``, ``risk`` on it).
* Every other ``ttp-diag`` command in the README's bash blocks (they need a GPU, a run folder
  or data) is parsed by the real argument parser: every flag exists.
* The Python example runs with both tables its comment offers.
* The ``<!-- demo-claims -->`` table is recomputed from a fresh fit with the demo's settings.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import ttp_diag as td

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(marker: str, lang: str = "bash") -> str:
    m = re.search(rf"<!-- {marker} -->\s*```{lang}\n(.*?)```", README, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


def _commands(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.split("  #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _env() -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_first_steps_run_verbatim(tmp_path):
    cmds = _commands(_block("first-steps"))
    assert cmds[0].startswith("ttp-diag demo --export-table")
    for cmd in cmds:
        argv = shlex.split(cmd)
        assert argv[0] == "ttp-diag", cmd
        # the console script of this environment runs this checkout (PYTHONPATH first)
        res = subprocess.run([sys.executable, "-m", "ttp_diag", *argv[1:]], cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        assert "Traceback" not in res.stderr and "Warning:" not in res.stderr, res.stderr
        if " analyze " in f" {cmd} ":
            assert res.stdout.splitlines()[1].startswith("Verdict:")


def test_every_other_readme_command_parses():
    from ttp_diag.cli import build_parser

    parser = build_parser()
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    seen = 0
    for block in blocks:
        for cmd in _commands(block):
            if not cmd.startswith("ttp-diag "):
                continue
            seen += 1
            try:
                parser.parse_args(shlex.split(cmd)[1:])
            except SystemExit as exc:  # argparse's error exit
                pytest.fail(f"README command does not parse ({exc.code}): {cmd}")
    assert seen >= 4


@pytest.mark.parametrize("table_line", ["table = td.simulate_score_table(seed=0)",
                                        "table = td.load_demo()"])
def test_python_example_runs_with_either_table(table_line, capsys):
    code = _block("python-example", "python")
    assert re.search(r"(?m)^table = .*$", code)
    code = re.sub(r"(?m)^table = .*$", table_line, code, count=1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Verdict:" in out and "Diagnostics of score_det" in out


# ---------------------------------------------------------------- the demo's numbers
def claims_rows(fit: td.BestOfN) -> list[str]:
    """The README's demo-claims table rows, computed from a fit (also prints the block)."""
    from ttp_diag.diagnostics import compare_selectors
    from ttp_diag.verdict import GAIN_WORDS

    v = fit.verdict()
    n = fit.ns_[-1]
    rnd, orc = fit._observed("random"), fit._observed("oracle")
    og = orc[-1] - rnd[-1]
    rows = []
    for s in fit.scores_:
        c = compare_selectors(fit.table_, s, "random", [n], ci=fit.ci_, n_boot=fit.n_boot_,
                              seed=fit.seed_, split=None, pool=fit.pool_,
                              validate=False).iloc[0]
        d = fit.diagnostics_[s]
        rows.append(
            f"| {td.names.selector_label(s)} | {c['diff']:+.4f} [{c['ci_low']:+.4f}, "
            f"{c['ci_high']:+.4f}] | {c['diff'] / og:.0%} | "
            f"{d.n_collapsed} of {d.n_users} ({d.null['alpha_null']:.0%}, p = "
            f"{d.null['alpha_p']:.2f}) | {d.beta:.0%} ({d.null['beta_null']:.0%}, p = "
            f"{d.null['beta_p']:.2f}) | {GAIN_WORDS[v.finding(s, 'gain')]} |")
    return rows


def test_demo_claims_agree_with_a_fresh_run():
    from ttp_diag.full_report import REPORT_SHAPES

    block = re.search(r"<!-- demo-claims -->(.*?)<!-- /demo-claims -->", README, re.S)
    assert block, "README has no demo-claims block"
    claimed = [line.strip() for line in block.group(1).splitlines()
               if line.startswith("| ") and not line.startswith(("| reward model", "| ---"))]
    # the demo's settings (ttp-diag demo): both report shapes, 95% intervals, 1000 draws, seed 0
    fit = td.BestOfN(shape=REPORT_SHAPES, ci=0.95, n_boot=1000, seed=0).fit(td.load_demo())
    assert claimed == claims_rows(fit)
    # the prose around the table says what the numbers say
    prose = block.group(1)
    n_gain = sum(fit.verdict().finding(s, "gain") == "gain" for s in fit.scores_)
    assert f"{n_gain} of {len(fit.scores_)} reward models" in prose
    if all(fit.verdict().finding(s, "collapse") != "collapse" for s in fit.scores_):
        assert "not distinguishable from a reward model with no collapsed user" in prose
