"""transformers renamed ``past_key_values`` to ``cache`` (the old name warns and is to be
removed); the prefix-sharing generation uses whichever name the installed release takes."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttp_diag.gen.backends import cache_kwarg, output_cache, tiny_random_backend  # noqa: E402


def test_prefix_generation_shares_the_cache_without_deprecation_warnings():
    be = tiny_random_backend(first_line=False)
    be.mode = "prefix"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*past_key_values.*")
        out = be.generate(["hello there", "abc"], n=3, max_new_tokens=4, seed=0)
    assert [len(x) for x in out] == [3, 3]
    model = be._model
    kw = cache_kwarg(model)
    import inspect

    assert kw in inspect.signature(model.forward).parameters
    import torch

    res = model(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True)
    assert output_cache(res) is not None  # the cache is found under the release's name
