"""Root pytest configuration: doctests of the package run with the test suite.

The generation modules need the ``gen`` extra (torch, transformers, peft); without it their
doctests are not collected, and the tests under ``tests/gen`` skip themselves.
"""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob.append("ttp_diag/gen/*")
