"""``python -m ttp_diag``: the ``ttp-diag`` command line."""

import sys

from ttp_diag.cli import main

if __name__ == "__main__":
    sys.exit(main())
