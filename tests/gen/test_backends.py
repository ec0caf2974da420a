"""Generation backends: both modes, the on-device first-line stop, dtype, vLLM kwargs."""

from __future__ import annotations

import importlib.util
import inspect

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttp_diag.gen.backends import (  # noqa: E402
    AUTO_MODE,
    _first_line_criterion,
    _line_tables,
    _postprocess,
    default_dtype,
    rows_for_memory,
    tiny_random_backend,
    vllm_kwargs,
)


@pytest.mark.parametrize("mode", ["prefix", "batched"])
def test_each_mode_is_deterministic_and_shaped(mode):
    be = tiny_random_backend(first_line=False)
    be.mode = mode
    prompts = ["hello there", "abc", "a much longer prompt than the others"]
    a = be.generate(prompts, n=4, max_new_tokens=6, seed=3)
    assert [len(x) for x in a] == [4, 4, 4]
    assert be.generate(prompts, n=4, max_new_tokens=6, seed=3) == a
    assert be.generate(prompts, n=4, max_new_tokens=6, seed=4) != a
    assert be.describe()["mode"] == mode


def test_batched_rows_per_call_do_not_split_a_prompts_samples():
    be = tiny_random_backend()
    be.mode = "batched"
    be.max_batch_rows = 5  # 5 // 2 = 2 prompts per call
    out = be.generate(["ab", "cd", "ef"], n=2, max_new_tokens=3, seed=0)
    assert [len(x) for x in out] == [2, 2, 2]


def test_batched_mode_matches_unbatched_greedy_text():
    """Left padding and masks do not change what a prompt generates (near-greedy)."""
    be = tiny_random_backend()
    be.mode = "batched"
    prompts = ["hello there", "abc"]
    together = be.generate(prompts, n=1, temperature=1e-4, max_new_tokens=6, seed=0)
    alone = [be.generate([p], n=1, temperature=1e-4, max_new_tokens=6, seed=0)[0]
             for p in prompts]
    assert together == alone


def _host_rule(pieces):
    """The original host-side rule: index of the step where a row stops (or None)."""
    has_text = False
    for step, s in enumerate(pieces):
        if "\n" in s and (has_text or s.split("\n")[0].strip()):
            return step
        if s.strip():
            has_text = True
    return None


def test_device_first_line_stop_equals_the_host_rule_on_random_sequences():
    be = tiny_random_backend(first_line=True)
    be._load()
    tok = be._tok
    nl, pre, txt = _line_tables(tok, be._model, "cpu")
    vocab = torch.arange(len(tok))
    g = torch.Generator().manual_seed(0)
    # bias towards the interesting tokens: newline, space, letters
    special = [tok.convert_tokens_to_ids(c) for c in ["\n", " ", "a", "b"]]
    for _ in range(30):
        rows = 8
        seq = vocab[torch.randint(len(tok), (rows, 12), generator=g)]
        mask = torch.rand(rows, 12, generator=g) < 0.5
        seq[mask] = torch.tensor(special)[torch.randint(4, (int(mask.sum()),), generator=g)]
        crit = _first_line_criterion(nl, pre, txt)[0]
        stopped = [None] * rows
        for t in range(12):
            done = crit(seq[:, : t + 1], None)
            assert done.dtype == torch.bool and done.device == seq.device
            for r in range(rows):
                if stopped[r] is None and bool(done[r]):
                    stopped[r] = t
        for r in range(rows):
            pieces = [tok.decode([int(i)]) for i in seq[r]]
            assert stopped[r] == _host_rule(pieces), pieces
            if stopped[r] is not None:
                # Stopping there never changes the kept first line.
                full = "".join(pieces)
                cut = "".join(pieces[: stopped[r] + 1])
                assert _postprocess(cut, True) == _postprocess(full, True)


def test_first_line_mode_outputs_have_no_newline():
    be = tiny_random_backend(first_line=True)
    for mode in ("prefix", "batched"):
        be.mode = mode
        out = be.generate(["ab", "cd"], n=8, max_new_tokens=12, seed=1)
        assert all("\n" not in t for texts in out for t in texts)


def test_defaults_by_device():
    assert default_dtype("cpu") == "float32"
    assert AUTO_MODE["cuda"] == "batched" and AUTO_MODE["cpu"] in ("prefix", "batched")
    be = tiny_random_backend()
    assert be.mode_ == AUTO_MODE["cpu"]
    with pytest.raises(ValueError, match="mode must be"):
        type(be)("x", mode="fast")


def test_rows_for_memory_by_hand():
    # SmolLM2-135M shape, bf16, 600 tokens: KV 2*30*3*64*600*2 = 13.8 MB; logits 0.59 MB
    per_row = 2 * 30 * 3 * 64 * 600 * 2 + 3 * 49152 * 4
    free = 80 * 2**30
    assert rows_for_memory(free_bytes=free, seq_len=600, num_layers=30, num_kv_heads=3,
                           head_dim=64, vocab_size=49152, dtype_bytes=2, cap=10**9) \
        == int(0.5 * free // per_row)
    assert rows_for_memory(free_bytes=1, seq_len=10, num_layers=1, num_kv_heads=1,
                           head_dim=1, vocab_size=1, dtype_bytes=1) == 1


_HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_vllm_kwargs_are_plain_values():
    llm, sp = vllm_kwargs("/m", {"tensor_parallel_size": 2, "data_parallel_size": 2},
                          n=30, temperature=1.7, top_p=0.9, max_new_tokens=24, seed=2**62 + 5)
    assert llm == {"model": "/m", "tensor_parallel_size": 2, "data_parallel_size": 2}
    assert sp == {"n": 30, "temperature": 1.7, "top_p": 0.9, "max_tokens": 24,
                  "seed": 2**62 + 5}


@pytest.mark.skipif(not _HAS_VLLM, reason="vllm is not installed here (it needs a CUDA "
                    "machine; pip install 'ttp-diag[vllm]'), so its signatures cannot be read")
def test_vllm_kwargs_match_the_installed_vllm_signatures():
    from vllm import LLM, SamplingParams

    llm, sp = vllm_kwargs("/m", {"tensor_parallel_size": 2}, n=3)
    llm_params = inspect.signature(LLM.__init__).parameters
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in llm_params.values())
    for k in llm:
        # LLM forwards unknown keywords to EngineArgs; check there too.
        if k not in llm_params:
            from vllm import EngineArgs

            assert has_var_kw and k in inspect.signature(EngineArgs).parameters, k
    sp_params = set(inspect.signature(SamplingParams).parameters)
    sp_params |= set(getattr(SamplingParams, "__struct_fields__", ()))
    assert set(sp) <= sp_params, set(sp) - sp_params
