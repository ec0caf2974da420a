"""The example notebook runs from top to bottom (issue 22): a score table to a verdict and
figures. Executed with nbclient on the installed kernel; skipped only where the docs extra
(nbclient, nbformat, ipykernel) is not installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    root = str(NOTEBOOK.parents[1])
    # the kernel imports this checkout's ttp_diag, as the tests do
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "Verdict: Best-of-16" in text and "gains" in text
    html = [o["data"]["text/html"] for o in outputs
            if o.get("output_type") == "execute_result" and "text/html" in o.get("data", {})]
    assert any("Verdict." in h for h in html)  # BestOfN's rich display
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 2  # the verdict figure and the theory panel
