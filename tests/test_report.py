"""The one report template: escaping of user text, atomic writes, risk report on it."""

import os
import re

import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.analysis import risk_report
from ttp_diag.cli import main
from ttp_diag.report import Report, markdown_escape

PAYLOADS = ["<script>alert(1)</script>", "<svg onload=alert(1)>", "[x](javascript:alert(1))",
            "```\n<img src=x onerror=alert(1)>"]


def hostile_table():
    t = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)
    users = sorted(t["user_id"].unique())
    mapping = {u: PAYLOADS[i % len(PAYLOADS)] + f"#{i}" for i, u in enumerate(users)}
    t["user_id"] = t["user_id"].map(mapping)
    t["query_id"] = t["user_id"] + "/" + t["query_id"].str.split("/").str[-1]
    return t


def _no_live_markup(md: str) -> None:
    # outside code fences, no raw tag or markdown link may survive
    fence = None  # CommonMark: a block closes at a backtick line at least as long as its opening
    for line in md.splitlines():
        run = re.match(r"^(`{3,})\s*$", line)
        if fence is None and line.startswith("```"):
            fence = re.match(r"^`+", line).group(0)
            continue
        if fence is not None and run and len(run.group(1)) >= len(fence):
            fence = None
            continue
        if fence is None:
            assert "<script" not in line and "<svg" not in line and "<img" not in line, line
            # a link needs an unescaped "](" : escaped brackets render as text
            assert not re.search(r"(?<!\\)\]\(javascript", line), line


def test_markdown_escape_neutralises_html_and_links():
    out = markdown_escape("<b>x</b> [a](javascript:b) *c* |d|")
    assert "<" not in out and ">" not in out
    assert "\\[a\\](javascript:b)" in out and "\\*c\\*" in out and "\\|d\\|" in out


def test_report_markdown_and_html_escape_user_text(tmp_path):
    rep = Report("T <script>")
    rep.heading("<svg onload=x>")
    rep.text(PAYLOADS[0])
    rep.pre("``` breaks out?\n<script>in pre</script>")
    rep.table(pd.DataFrame({"user <b>": PAYLOADS}), "users", "caption <script>")
    files = rep.write(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    _no_live_markup(md)
    assert "````" in md  # the fence is longer than the backticks inside the block
    html = (tmp_path / "report.html").read_text()
    assert "<script>" not in html and "<svg" not in html
    assert set(files) == {"users.csv", "report.html", "summary.md"}
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temp file left


def test_risk_report_files_escape_user_ids(tmp_path):
    rep = risk_report(hostile_table(), ["score_det"])
    files = rep.save(tmp_path)
    _no_live_markup((tmp_path / "risk_report.md").read_text())
    html = (tmp_path / "risk_report.html").read_text()
    assert "<script>" not in html and "<svg" not in html
    assert {"risk_users.csv", "risk_queries.csv", "risk_eval_users.csv",
            "risk_eval_queries.csv", "table_a13_collapse_by_half.csv",
            "table_a14_hacking_by_half.csv", "risk_report.md", "risk_report.html"} <= set(files)
    assert str(rep).startswith("A-priori risk")
    assert set(rep.summary["what"]) == {"collapse", "hacking"}


def test_demo_summary_md_escapes_user_text(tmp_path):
    path = tmp_path / "hostile.parquet"
    hostile_table().to_parquet(path)
    assert main(["demo", "--table", str(path), "--out", str(tmp_path / "o"),
                 "--n-boot", "20"]) == 0
    for name in ("summary.md", "risk_report.md"):
        _no_live_markup((tmp_path / "o" / name).read_text())


def test_risk_cli_all_zero_rewards_say_no_reward_signal(tmp_path, capsys):
    path = tmp_path / "zero.parquet"
    td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0).assign(
        reward=0.0).to_parquet(path)
    # a table-content error: ScoreTableError's exit code
    assert main(["risk", str(path), "--out", str(tmp_path / "r")]) == td.ScoreTableError.exit_code
    err = capsys.readouterr().err
    assert "no reward signal: every reward in split 'val' is 0" in err
    assert "nan" not in err


def test_write_error_leaves_no_temp_file(tmp_path, monkeypatch):
    rep = Report("x")
    rep.table(pd.DataFrame({"a": [1]}), "a")

    def boom(*_args, **_kw):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        rep.write(tmp_path)
    assert os.listdir(tmp_path) == []
