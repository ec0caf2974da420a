"""One colour, label and line style per reward model, shared by every figure.

The same reward model always gets the same colour, whichever figure it appears in and
whichever other models share the figure. Known models have fixed colours (an Okabe-Ito
colour-blind-safe palette); any other ``score_*`` column gets a colour from a fixed extra
palette chosen by a stable hash of its name, with collisions inside one figure resolved
deterministically by :func:`colors_for`.

Examples
--------
>>> rm_key("score_det"), rm_label("score_det"), rm_color("score_det")
('det', 'Deterministic User RM', '#E69F00')
>>> rm_color("Probabilistic User RM") == rm_color("score_prob")
True
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ttp_diag.names import LABELS, selector_key, selector_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "COLORS",
    "EXTRA_PALETTE",
    "LABELS",
    "CATEGORY_COLORS",
    "RC",
    "colors_for",
    "rm_color",
    "rm_key",
    "rm_label",
    "rm_linestyle",
    "rm_marker",
    "new_figure",
    "savefig",
    "styled",
]

#: Fixed colours of the known selectors (Okabe-Ito palette, colour-blind safe).
COLORS = {
    "random": "#7F7F7F",  # grey
    "oracle": "#D55E00",  # vermillion (the paper's red)
    "global": "#0072B2",  # blue
    "det": "#E69F00",  # orange
    "prob": "#009E73",  # bluish green (the paper's green)
    "training": "#56B4E9",  # sky blue (the paper's teal baseline)
    "theory": "#CC79A7",  # reddish purple
    # The reward-model zoo: a variant shares its family's hue (dark = base, light = variant);
    # none is in EXTRA_PALETTE, so unknown columns keep their hashed colours.
    "mpu": "#8C510A",  # dark brown
    "mpu_avg": "#DFC27D",  # tan
    "lore": "#762A83",  # purple
    "lore_alt": "#C2A5CF",  # lavender
    "pref": "#E7298A",  # magenta
    "pal": "#66A61E",  # leaf green
    "vpl": "#7570B3",  # slate violet
    "global_bt": "#01665E",  # dark teal
    "global_bt_v2": "#5AB4AC",  # light teal
    "genarm": "#404040",  # charcoal
    "pdpo": "#A50026",  # crimson
}

#: Colours for unknown score columns, none close to a fixed colour above.
EXTRA_PALETTE = (
    "#8C564B",  # brown
    "#6A3D9A",  # purple
    "#B2182B",  # dark red
    "#1B7837",  # dark green
    "#BCBD22",  # olive
    "#2166AC",  # dark blue
    "#F781BF",  # pink
    "#35978F",  # teal
    "#000000",  # black
    "#A6761D",  # ochre
)

#: Colours of the per-query categories of the rescue scatter (not reward models).
CATEGORY_COLORS = {
    "rescued": COLORS["prob"],
    "harmed": COLORS["det"],
    "both_positive": "#5E81AC",
    "both_negative": "#4D4D4D",
}

_MARKERS = {"random": "", "oracle": "o", "global": "s", "det": "^", "prob": "D"}


def rm_key(name: str) -> str:
    """Canonical key of a selector name (see :func:`ttp_diag.names.selector_key`)."""
    return selector_key(name)


def rm_label(name: str, short: bool = False) -> str:
    """Legend label of a selector (see :func:`ttp_diag.names.selector_label`)."""
    return selector_label(name, short)


def _hash_index(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) % len(EXTRA_PALETTE)


def rm_color(name: str) -> str:
    """Colour of a selector: fixed for known models, a stable hashed palette entry otherwise."""
    key = rm_key(name)
    if key in COLORS:
        return COLORS[key]
    return EXTRA_PALETTE[_hash_index(key)]


def colors_for(names: Iterable[str]) -> dict[str, str]:
    """Colours for the selectors of one figure, distinct within the figure.

    Known models keep their fixed colours. An unknown name keeps its hashed colour unless an
    earlier name (in sorted order) of the same figure already took it, in which case it takes
    the next free palette entry, so the result depends only on the set of names.
    """
    out, used = {}, set()
    for name in names:
        if rm_key(name) in COLORS:
            out[name] = COLORS[rm_key(name)]
            used.add(out[name])
    for name in sorted(n for n in names if rm_key(n) not in COLORS):
        i = _hash_index(rm_key(name))
        for step in range(len(EXTRA_PALETTE)):
            c = EXTRA_PALETTE[(i + step) % len(EXTRA_PALETTE)]
            if c not in used:
                break
        out[name] = c
        used.add(c)
    return out


def rm_marker(name: str) -> str:
    """Marker of a selector's observed curve (random has none: it is a flat reference)."""
    return _MARKERS.get(rm_key(name), "v")


def rm_linestyle(name: str) -> str:
    """Line style of a selector's observed curve (random dashed, training dotted)."""
    key = rm_key(name)
    if key == "random":
        return "--"
    if key == "training":
        return ":"
    return "-"


#: Matplotlib settings of every figure of the package (applied with :func:`styled`).
RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def styled(func: F) -> F:
    """Decorator: run a figure function inside ``matplotlib.rc_context(RC)``.

    Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas), never through
    pyplot, so nothing global changes: no backend switch, no figure registry to leak.
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
               squeeze: bool = False, **kw: Any) -> tuple[Figure, Any]:
    """A constrained-layout :class:`~matplotlib.figure.Figure` and its axes grid (Agg canvas)."""
    from matplotlib.figure import Figure

    if figsize is None:
        figsize = (4.2 * ncols, 3.3 * nrows)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kw)
    return fig, axes


def savefig(fig: Figure, path: str | Path, *, dpi: int = 130) -> str:
    """Save a figure atomically (a :func:`tempfile.mkstemp` file in the target folder, then
    :func:`os.replace`; removed on error); returns the path.

    The figures use constrained layout, which already fits every label and legend, so no
    ``bbox_inches="tight"`` (that draws every figure twice).
    """
    from ttp_diag.io import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return str(atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi)))
