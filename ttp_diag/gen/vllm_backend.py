"""The vLLM backend: a thin adapter whose keyword arguments are built by a pure function.

Split from :mod:`ttp_diag.gen.backends` (which re-exports these names). vLLM itself is
imported only when a model is loaded. What was run: :func:`vllm_kwargs` is tested against
the installed vLLM's signatures where vLLM is installed; the adapter has never generated on
a GPU in this project's tests (see the README).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ttp_diag.gen.sampling import _check_sampling, _postprocess

__all__ = ["VLLMBackend", "vllm_kwargs"]


class VLLMBackend:
    """Thin adapter over ``vllm.LLM`` for GPU generation.

    ``n`` samples per prompt are requested in one ``SamplingParams(n=...)``; every other
    keyword (``tensor_parallel_size``, ``data_parallel_size``, ``gpu_memory_utilization``,
    ``max_model_len``, ``dtype``, ...) is passed to ``vllm.LLM`` unchanged, so scaling out
    is vLLM's own business (tensor parallel in a node, Ray across nodes).

    Parameters
    ----------
    model : str
        Local model directory (nothing is downloaded here, but vLLM may if given a hub id).
    use_chat_template, first_line : bool
        As in :class:`TransformersBackend`.
    **llm_kwargs
        Passed to ``vllm.LLM``.

    Examples
    --------
    Skipped in the test suite: vLLM is not installed here and needs a CUDA GPU (and a real
    model), so there is no tiny stand-in; ``tiny_random_backend`` covers the shared logic.

    >>> be = VLLMBackend("/models/Qwen3-4B-Instruct", tensor_parallel_size=2)  # doctest: +SKIP
    >>> be.generate(["Write a headline: ..."], n=30, temperature=1.7)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        use_chat_template: bool = True,
        first_line: bool = False,
        **llm_kwargs: Any,
    ) -> None:
        self.model = str(model)
        self.use_chat_template = use_chat_template
        self.first_line = first_line
        self.llm_kwargs = llm_kwargs
        self.name = "vllm"
        self._llm = None

    def _load(self):
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as exc:  # pragma: no cover - needs a GPU machine
                raise ImportError(
                    "the vLLM backend needs `pip install ttp-diag[vllm]` on a GPU machine"
                ) from exc
            llm_kw, _ = vllm_kwargs(self.model, self.llm_kwargs)
            self._llm = LLM(**llm_kw)

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_new_tokens: int = 32,
        seed: int = 0,
    ) -> list[list[str]]:
        """Sample ``n`` completions per prompt with one vLLM request."""
        prompts = _check_sampling(prompts, n, temperature, top_p, max_new_tokens)
        if not prompts:
            return []
        self._load()
        from vllm import SamplingParams

        tok = self._llm.get_tokenizer()
        if self.use_chat_template and getattr(tok, "chat_template", None):
            prompts = [
                tok.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        _, sp_kw = vllm_kwargs(
            self.model, self.llm_kwargs, n=n, temperature=temperature, top_p=top_p,
            max_new_tokens=max_new_tokens, seed=seed,
        )
        params = SamplingParams(**sp_kw)
        outs = self._llm.generate(prompts, params, use_tqdm=False)
        return [[_postprocess(c.text, self.first_line) for c in o.outputs] for o in outs]

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model,
            **{k: repr(v) for k, v in self.llm_kwargs.items()},
        }


def vllm_kwargs(
    model: str,
    llm_kwargs: dict | None = None,
    *,
    n: int = 1,
    temperature: float = 1.0,
    top_p: float = 0.95,
    max_new_tokens: int = 32,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Keyword arguments of ``vllm.LLM`` and ``vllm.SamplingParams`` (pure; no vLLM import).

    Kept apart from :class:`VLLMBackend` so that the adapter can be checked without a GPU:
    ``tests/gen/test_backends.py`` matches both dicts against the installed vLLM's
    ``inspect.signature``. Parallelism settings (``tensor_parallel_size``,
    ``data_parallel_size``, ``pipeline_parallel_size``, ...) pass through unchanged.

    Examples
    --------
    >>> llm, sp = vllm_kwargs("/models/m", {"tensor_parallel_size": 2}, n=4, seed=3)
    >>> llm
    {'model': '/models/m', 'tensor_parallel_size': 2}
    >>> sp["n"], sp["max_tokens"], sp["seed"]
    (4, 32, 3)
    """
    llm = {"model": str(model), **dict(llm_kwargs or {})}
    sp = {
        "n": int(n),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "max_tokens": int(max_new_tokens),
        # vLLM seeds are 64-bit at most; the chunk seeds of candidates.py are 60-bit.
        "seed": int(seed) % (2**63),
    }
    return llm, sp
