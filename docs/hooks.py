"""mkdocs hook: run the gallery's code when the site is built and embed its figures.

Each ```python block of ``gallery.md`` runs in one shared namespace, in order; a block that
leaves a matplotlib figure in ``fig`` gets that figure embedded right after it (a base64 PNG,
so no generated file lands in the source tree), and what a block prints is shown below it.
An error in a block fails the build.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import textwrap

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 - mkdocs' signature
    if page.file.src_uri != "gallery.md":
        return markdown
    import matplotlib

    matplotlib.use("Agg")
    from ttp_diag.report import figure_png_bytes

    ns: dict = {}
    out, pos = [], 0
    for m in _BLOCK.finditer(markdown):
        out.append(markdown[pos:m.end()])
        pos = m.end()
        ns.pop("fig", None)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(m.group(1), "gallery.md", "exec"), ns)
        if buf.getvalue().strip():
            lines = [textwrap.fill(line, 96, subsequent_indent="    ")
                     for line in buf.getvalue().rstrip().splitlines()]
            out.append("\n\n```text\n" + "\n".join(lines) + "\n```\n")
        fig = ns.get("fig")
        if fig is not None:
            b64 = base64.b64encode(figure_png_bytes(fig, dpi=90)).decode("ascii")
            out.append(f'\n\n<img alt="figure" style="max-width:100%" '
                       f'src="data:image/png;base64,{b64}">\n')
    out.append(markdown[pos:])
    return "".join(out)
