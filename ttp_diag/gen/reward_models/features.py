"""Frozen-backbone text features for the reward-model zoo, computed once per text.

The zoo's families differ only in small heads on top of a shared text representation, so
the backbone (default all-MiniLM-L6-v2) runs once per distinct text and every head trains
on cached features: one forward pass yields the masked mean of the last hidden state
(``"mean"``), the last non-padding token's state (``"last"``; for BERT-style models this is
the ``[SEP]`` token, for decoder models the last token as in the second paper's Global-RM),
and every token's state (``"tokens"``, float16, for per-token rewards). The cache is keyed
by backbone, max length and (prompt, text) and shared by all models in the process.

Prompt and response (the reward-model contract): with ``prompts=`` the backbone reads one
sequence, the tokenizer's special tokens around ``prompt + response``, with the prompt cut
from the LEFT to fit ``max_length`` (the response is never cut unless it alone is longer);
``"mean"`` and ``"tokens"`` then cover the *response* tokens only (each of which attends
to the prompt), ``"last"`` is the last token. Without prompts a text is a whole
reward-model input and keeps its first quarter and its end (the old behaviour).

This is a departure from the second paper, whose reward models train LoRA (rank 8) on the
backbone; here the backbone is frozen (LoRA rank 0) so that eleven families train in
minutes on a CPU. Batches are length-sorted; on CUDA the forward pass runs under bf16
autocast with batches of 512.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ttp_diag.exceptions import ConfigError

from ._util import _torch, default_backbone

__all__ = ["FeatureEncoder", "clear_feature_cache"]

_CACHE: dict[tuple, dict[str, object]] = {}
_MODELS: dict[tuple, tuple] = {}


def clear_feature_cache() -> None:
    """Forget every cached feature and loaded backbone."""
    _CACHE.clear()
    _MODELS.clear()


class FeatureEncoder:
    """Frozen backbone -> per-text features (``mean``, ``last``, ``tokens``), cached.

    Parameters
    ----------
    backbone : str, optional
        Local Hugging Face model directory; default MiniLM (offline).
    max_length : int, default 128
        With prompts, the prompt is cut from the left to fit; a text without a prompt keeps
        its first quarter and its end (the candidate).
    device : str, default "auto"
    batch_size : int, optional
        Default 64 on CPU, 512 on CUDA.
    """

    def __init__(self, backbone: str | None = None, *, max_length: int = 128,
                 device: str = "auto", batch_size: int | None = None):
        self.backbone = backbone
        self.max_length = max_length
        self.device = device
        self.batch_size = batch_size

    def _key(self) -> tuple:
        return (str(self.backbone or default_backbone()), int(self.max_length))

    def _load(self):
        torch = _torch()
        key = self._key()
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer

            path = key[0]
            if not Path(path).exists():
                raise FileNotFoundError(f"backbone directory {path!r} does not exist; pass a "
                                        "local Hugging Face model directory")
            tok = AutoTokenizer.from_pretrained(path)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model = AutoModel.from_pretrained(path).eval()
            dev = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" \
                else self.device
            _MODELS[key] = (tok, model.to(dev), dev)
        return _MODELS[key]

    def encode(self, texts: Sequence[str], pooling: str = "mean",
               prompts: Sequence[str] | None = None):
        """Features of ``texts`` (responses; with ``prompts``, one context per text): an
        (n, d) float32 array, or for ``"tokens"`` a list of (T_i, d) float16 arrays."""
        if pooling not in ("mean", "last", "tokens"):
            raise ConfigError(f"pooling={pooling!r}; use 'mean', 'last' or 'tokens'")
        texts = [str(t) for t in texts]
        if prompts is not None and len(prompts) != len(texts):
            raise ConfigError(f"{len(prompts)} prompts for {len(texts)} texts; pass one prompt "
                              "per text (or prompts=None)")
        keys = texts if prompts is None else list(zip([str(p) for p in prompts], texts,
                                                      strict=True))
        cache = _CACHE.setdefault(self._key(), {})
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            self._run(todo, cache)
        idx = {"mean": 0, "last": 1, "tokens": 2}[pooling]
        if pooling == "tokens":
            return [cache[k][idx] for k in keys]
        return np.stack([cache[k][idx] for k in keys]).astype(np.float32)

    def _ids(self, tok, keys: list) -> list[tuple[list[int], int, int]]:
        """(ids, start, end) per key: a text alone (first quarter + end kept), or a
        (prompt, response) pair (prompt cut from the left)."""
        from ._util import join_prompt_response

        max_len = int(self.max_length)
        out: list = [None] * len(keys)
        plain = [i for i, k in enumerate(keys) if isinstance(k, str)]
        if plain:
            ids = tok([keys[i] for i in plain], truncation=False, padding=False)["input_ids"]
            head = max_len // 4
            for i, x in zip(plain, ids, strict=True):
                x = x if len(x) <= max_len else x[:head] + x[len(x) - (max_len - head):]
                out[i] = (x, 0, len(x))
        paired = [i for i, k in enumerate(keys) if not isinstance(k, str)]
        if paired:
            res = join_prompt_response(tok, [keys[i][1] for i in paired],
                                       [keys[i][0] for i in paired], max_len)
            for i, r in zip(paired, res, strict=True):
                out[i] = r
        return out

    def _run(self, texts: list, cache: dict) -> None:
        torch = _torch()
        tok, model, dev = self._load()
        spans = self._ids(tok, texts)
        ids = [x for x, _, _ in spans]
        order = np.argsort([len(x) for x in ids], kind="stable")
        cuda = dev.startswith("cuda")
        bs = int(self.batch_size or (512 if cuda else 64))
        import contextlib

        ac = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda
              and torch.cuda.is_bf16_supported() else contextlib.nullcontext())
        with torch.inference_mode(), ac:
            for s in range(0, len(ids), bs):
                b = order[s:s + bs]
                width = max(len(ids[i]) for i in b)
                inp = torch.full((len(b), width), int(tok.pad_token_id), dtype=torch.long)
                att = torch.zeros((len(b), width), dtype=torch.long)
                for r, i in enumerate(b):
                    inp[r, :len(ids[i])] = torch.as_tensor(ids[i])
                    att[r, :len(ids[i])] = 1
                hid = model(input_ids=inp.to(dev), attention_mask=att.to(dev)).last_hidden_state
                hid = hid.float().cpu()
                lens = att.sum(1).numpy()
                for r, i in enumerate(b):
                    n = int(lens[r])
                    _, s0, s1 = spans[i]
                    resp = hid[r, s0:max(s1, s0 + 1)]
                    cache[texts[i]] = (resp.mean(0).numpy(), hid[r, n - 1].numpy(),
                                       resp.numpy().astype(np.float16))
