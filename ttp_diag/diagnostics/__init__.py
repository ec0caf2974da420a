"""Diagnostics of a reward model: collapse, hacking, correlations, and what they are worth.

* :mod:`.core` -- :func:`diagnose` and the :class:`Diagnostics` result;
* :mod:`.inference` -- two-level bootstrap, null model, noise-corrected rates;
* :mod:`.compare` -- :func:`compare_selectors`, paired exact comparison of two selectors.
"""

from .compare import compare_selectors
from .core import RHO_U_METHODS, WEIGHTS, Diagnostics, diagnose

__all__ = ["RHO_U_METHODS", "WEIGHTS", "Diagnostics", "compare_selectors", "diagnose"]
