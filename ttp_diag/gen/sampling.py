"""Sampling settings checks and completion clean-up shared by every generation backend."""

from __future__ import annotations

import re

from ttp_diag.exceptions import ConfigError, ConfigTypeError

__all__ = ["_check_sampling", "_postprocess"]


def _check_sampling(prompts, n, temperature, top_p, max_new_tokens) -> list[str]:
    if isinstance(prompts, str):
        raise ConfigTypeError(
            "prompts must be a sequence of strings, got a single str; wrap it in a list"
        )
    prompts = list(prompts)
    if not all(isinstance(p, str) for p in prompts):
        raise ConfigTypeError("every prompt must be a str")
    if int(n) < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0 for sampling, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if int(max_new_tokens) < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    return prompts


# Output markers of the paper's templates that small models often repeat before answering.
_MARKER = re.compile(
    r"^\s*(?:#+\s*)?(?:Headline|Title|Abstract|Review Content|Post Content)\s*:\s*", re.I
)


def _postprocess(text: str, first_line: bool) -> str:
    text = text.strip()
    if first_line:
        # Small models keep writing after the headline (a second headline, an explanation);
        # the first non-empty line is the answer to a one-line task.
        for line in text.splitlines():
            if line.strip():
                return _MARKER.sub("", line).strip()
        return ""
    return text
