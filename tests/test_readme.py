"""The README's Python example runs as written."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    text = README.read_text()
    start = text.index("```python\n") + len("```python\n")
    code = text[start:text.index("```", start)]
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "Diagnostics of score_det" in out
    assert "rel_mae" in out and "c_sigma" in out  # BestOfN.print_summary()
