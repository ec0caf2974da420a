"""Canonical keys and display labels of selectors (reward models, Random, Oracle).

Lives below the analysis layers so that tables (``BestOfN.summary``'s ``rm`` column) and
figures (:mod:`ttp_diag.plots.style`) name a reward model the same way, without the tables
importing the plotting package.

Examples
--------
>>> selector_key("score_det"), selector_label("score_det"), selector_label("score_det", True)
('det', 'Deterministic User RM', 'Det')
>>> selector_label("score_my_rm")
'my_rm'
"""

from __future__ import annotations

__all__ = ["KNOWN", "LABELS", "SHORT_LABELS", "selector_key", "selector_label"]

#: Keys of the selectors with fixed labels and colours.
KNOWN = ("random", "oracle", "global", "det", "prob", "training", "theory")

#: Labels used in every legend and table.
LABELS = {
    "random": "Random",
    "oracle": "Oracle",
    "global": "Global RM",
    "det": "Deterministic User RM",
    "prob": "Probabilistic User RM",
    "training": "Training baseline",
    "theory": "Theory",
    # the personalized reward-model zoo (second paper, section 6; ttp_diag.gen.reward_models)
    "mpu": "MPU",
    "mpu_avg": "MPU-Avg",
    "lore": "LoRE",
    "lore_alt": "LoRE-Alt",
    "pref": "PReF",
    "pal": "PAL",
    "vpl": "VPL",
    "global_bt": "Global-RM (BT)",
    "global_bt_v2": "Global-RM-V2",
    "genarm": "GenARM",
    "pdpo": "P-DPO",
}

#: Short labels for crowded axes (violin ticks): the labels, shortened where they are long.
SHORT_LABELS = {**LABELS, "global": "Global", "det": "Det", "prob": "Prob",
                "training": "Training", "global_bt": "Glob-BT", "global_bt_v2": "Glob-V2"}

_ALIASES = {
    "global rm": "global",
    "deterministic user rm": "det",
    "deterministic": "det",
    "user rm": "det",
    "user": "det",
    "probabilistic user rm": "prob",
    "probabilistic": "prob",
    "training baseline": "training",
    "train": "training",
    "baseline": "training",
}


def selector_key(name: str) -> str:
    """Canonical key of a selector name: ``"score_det"``, ``"det"``, ``"Deterministic User RM"``
    all give ``"det"``; unknown ``score_foo`` gives ``"foo"``."""
    s = str(name)
    low = s.lower()
    if low in KNOWN:
        return low
    if low in _ALIASES:
        return _ALIASES[low]
    if low.startswith("score_"):
        return low[len("score_"):]
    return s


def selector_label(name: str, short: bool = False) -> str:
    """Legend label of a selector (unknown names: the column without its ``score_`` prefix)."""
    key = selector_key(name)
    table = SHORT_LABELS if short else LABELS
    return table.get(key, key)
