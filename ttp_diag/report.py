"""Self-contained reports: one HTML page (figures embedded as base64 PNG) and a markdown summary.

A :class:`Report` collects headings, paragraphs, preformatted text, figures and tables in
order. :meth:`Report.write` saves every figure as a PNG and every table as a CSV next to
``report.html`` (which needs none of them: the PNGs are embedded, no external CSS or
scripts) and ``summary.md`` (which links the PNGs). All writes are atomic
(:func:`ttp_diag.io.atomic_write`: a ``mkstemp`` file in the target folder, removed on error).

This is the package's one HTML/markdown template: the demo report and the risk report
(:meth:`ttp_diag.analysis.RiskReport.save`) are both built with it. User text (column names,
user ids, provenance) is escaped in both outputs: HTML-escaped in the page, and in the
markdown HTML-escaped too (viewers such as GitHub render inline HTML) with markdown's own link
and emphasis characters backslash-escaped; preformatted blocks use a fence longer than any
backtick run inside them.

Examples
--------
>>> import pandas as pd, tempfile
>>> rep = Report("Demo")
>>> rep.heading("Numbers")
>>> rep.table(pd.DataFrame({"a": [1, 2]}), "numbers", caption="two numbers")
>>> paths = rep.write(tempfile.mkdtemp())
>>> sorted(paths)
['numbers.csv', 'report.html', 'summary.md']
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["Report", "figure_png_bytes", "markdown_escape", "markdown_table"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1180px;
margin:1em auto;padding:0 1.2em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #333;padding-bottom:.2em;margin:.4em 0 .4em;font-size:1.7em}
h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0 1.4em;font-size:.86em}
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0 2em} figcaption{font-size:.9em;color:#444;margin-top:.3em}
img{max-width:100%;height:auto} .caption{font-size:.9em;color:#444}
nav a{margin-right:1em} .tablewrap{overflow-x:auto;max-width:100%}
.callout{background:#eef4fb;border-left:4px solid #2166ac;padding:.3em 1em;margin:.8em 0;
font-size:.9em;line-height:1.38} .callout p{margin:.4em 0} .callout ul{margin:.3em 0;
padding-left:1.3em} .callout li{margin:.25em 0}
"""


def figure_png_bytes(fig: Figure, *, dpi: int = 130) -> bytes:
    """Render a matplotlib figure to PNG bytes (constrained layout already fits it: no
    ``bbox_inches="tight"``, which would draw it twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> str:
    from ttp_diag.io import atomic_write

    return str(atomic_write(path, lambda tmp: Path(tmp).write_bytes(data)))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|!#~])")


def markdown_escape(text: str) -> str:
    """``text`` safe to embed in markdown: no HTML, links or emphasis survive.

    Examples
    --------
    >>> markdown_escape("<script>alert(1)</script> [x](javascript:y) a_b")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\[x\\\\](javascript:y) a\\\\_b'
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def _md_fence(text: str) -> str:
    """A backtick fence longer than any backtick run in ``text`` (so it cannot be closed)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _fmt_cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return ""
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return markdown_escape(str(v).replace("\n", " "))


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured markdown table (no extra dependency).

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"a": [1], "b": [0.5]})))
    | a | b |
    | --- | --- |
    | 1 | 0.5 |
    """
    cols = [markdown_escape(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(c.lower() if c.isalnum() else "-" for c in text).strip("-")


class Report:
    """An ordered report of headings, text, figures and tables.

    Parameters
    ----------
    title : str
        Page title.
    dpi : int, default 130
        Resolution of the PNGs.

    Examples
    --------
    >>> rep = Report("Example")
    >>> rep.text("Hello")
    >>> "<p>Hello</p>" in rep.to_html()
    True
    """

    def __init__(self, title: str, *, dpi: int = 130):
        self.title = title
        self.dpi = dpi
        self._items: list[tuple] = []
        self._pngs: dict[str, bytes] = {}
        self._tables: dict[str, pd.DataFrame] = {}

    # ------------------------------------------------------------- building
    def heading(self, text: str, level: int = 2) -> None:
        """Add a section heading (level 2 headings appear in the page's navigation bar)."""
        self._items.append(("heading", text, level))

    def text(self, text: str) -> None:
        """Add a paragraph (plain text; HTML is escaped)."""
        self._items.append(("text", text))

    def callout(self, headline: str, items: dict[str, str]) -> None:
        """Add a highlighted box: a headline and one bullet per ``label: text`` (the verdict)."""
        self._items.append(("callout", headline, dict(items)))

    def pre(self, text: str) -> None:
        """Add preformatted text (e.g. a diagnostics summary)."""
        self._items.append(("pre", text))

    def figure(self, fig: Figure | bytes, name: str, caption: str = "") -> None:
        """Add a matplotlib figure (or PNG bytes), saved as ``<name>.png`` and embedded in the
        HTML.

        The figure is rendered immediately, so it can be closed or garbage collected after.
        """
        if name in self._pngs:
            raise ConfigError(f"figure name {name!r} is used twice in this report")
        png = fig if isinstance(fig, bytes) else figure_png_bytes(fig, dpi=self.dpi)
        self._pngs[name] = png
        self._items.append(("figure", name, caption))

    def table(self, df: pd.DataFrame, name: str, caption: str = "", *,
              max_rows: int | None = 60) -> None:
        """Add a table, saved in full as ``<name>.csv``; the page shows up to ``max_rows``."""
        if name in self._tables:
            raise ConfigError(f"table name {name!r} is used twice in this report")
        self._tables[name] = df
        self._items.append(("table", name, caption, max_rows))

    # ------------------------------------------------------------- rendering
    def to_html(self) -> str:
        """The whole report as one self-contained HTML page."""
        nav = [f'<a href="#{_slug(it[1])}">{html.escape(it[1])}</a>'
               for it in self._items if it[0] == "heading" and it[2] == 2]
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        if nav:
            body.append("<nav>" + " ".join(nav) + "</nav>")
        for it in self._items:
            kind = it[0]
            if kind == "heading":
                lvl = min(max(int(it[2]), 2), 4)
                body.append(f'<h{lvl} id="{_slug(it[1])}">{html.escape(it[1])}</h{lvl}>')
            elif kind == "text":
                body.append(f"<p>{html.escape(it[1])}</p>")
            elif kind == "pre":
                body.append(f"<pre>{html.escape(it[1])}</pre>")
            elif kind == "callout":
                lis = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                              for k, v in it[2].items())
                body.append(f'<div class="callout"><p>{html.escape(it[1])}</p><ul>{lis}</ul>'
                            f"</div>")
            elif kind == "figure":
                b64 = base64.b64encode(self._pngs[it[1]]).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(it[1])}" src="data:image/png;base64,{b64}">'
                    f"<figcaption><b>{html.escape(it[1])}.png</b> {html.escape(it[2])}"
                    f"</figcaption></figure>")
            elif kind == "table":
                name, caption, max_rows = it[1], it[2], it[3]
                df = self._tables[name]
                shown = df if max_rows is None else df.head(max_rows)
                more = (f" (first {max_rows} of {len(df)} rows; all in {name}.csv)"
                        if len(shown) < len(df) else f" ({name}.csv)")
                body.append(f'<p class="caption">{html.escape(caption)}{html.escape(more)}</p>')
                body.append('<div class="tablewrap">'
                            + shown.to_html(index=False, border=0, na_rep="",
                                            float_format=lambda x: _fmt_cell(float(x)))
                            + "</div>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>\n"
                + "\n".join(body) + "\n</body></html>\n")

    def to_markdown(self) -> str:
        """The report as markdown; figures link to their PNG files."""
        esc = markdown_escape
        out = [f"# {esc(self.title)}", ""]
        for it in self._items:
            kind = it[0]
            if kind == "heading":
                out += ["#" * min(max(int(it[2]), 2), 4) + " " + esc(it[1]), ""]
            elif kind == "text":
                out += [esc(it[1]), ""]
            elif kind == "callout":
                out += [esc(it[1]), ""] + [f"* **{esc(k)}**: {esc(v)}"
                                           for k, v in it[2].items()] + [""]
            elif kind == "pre":
                fence = _md_fence(it[1])
                out += [fence, it[1], fence, ""]
            elif kind == "figure":
                # the link target is the PNG's file name, percent-encoded (no markup survives)
                out += [f"![{esc(it[1])}]({quote(it[1])}.png)", "",
                        f"*{esc(it[2])}*" if it[2] else "", ""]
            elif kind == "table":
                df = self._tables[it[1]]
                df = df if it[3] is None else df.head(it[3])
                out += [f"{esc(it[2])} ({esc(it[1])}.csv)", "", markdown_table(df), ""]
        return "\n".join(out)

    def write(self, out_dir: str | Path, *, html_name: str = "report.html",
              md_name: str = "summary.md") -> dict[str, str]:
        """Write the HTML page, the markdown summary, every PNG and CSV into ``out_dir``.

        Returns
        -------
        dict
            file name -> path.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, png in self._pngs.items():
            paths[f"{name}.png"] = _atomic_write(out / f"{name}.png", png)
        for name, df in self._tables.items():
            paths[f"{name}.csv"] = _atomic_write(out / f"{name}.csv",
                                                 df.to_csv(index=False).encode("utf-8"))
        paths[html_name] = _atomic_write(out / html_name, self.to_html().encode("utf-8"))
        paths[md_name] = _atomic_write(out / md_name, self.to_markdown().encode("utf-8"))
        return paths
