"""Training and inference loops of the LoRA reward models (shared by global, det and prob).

``LoRATrainer`` holds the settings, builds the network once (tokenizer, backbone, LoRA,
head), and runs the AdamW loop with warm-up and linear decay over query-packed batches.
Scoring uses length-sorted batches; on CUDA it uses bf16 autocast (``precision="auto"``)
and large batches (``score_batch_size``), on CPU today's fp32 batches of
``max(batch_size, 64)``.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ttp_diag.exceptions import ConfigError, InputFileError

from ._util import _torch, default_backbone, init_param_names, versions
from .losses import bounded_variance, high_score_contrastive
from .network import _build_net_class, _detect_target_modules

logger = logging.getLogger("ttp_diag.gen.reward_models")


class LoRATrainer:
    """Shared settings, network construction, training and inference loops."""

    _kind = "base"

    def __init__(
        self,
        backbone: str | None = None,
        *,
        max_length: int = 128,
        batch_size: int = 32,
        epochs: float = 3,
        lr: float = 2e-4,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        grad_clip: float = 1.0,
        use_lora: bool = True,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_layers: int | None = None,
        target_modules: Sequence[str] | None = None,
        pooling: str = "mean",
        head: str = "mlp",
        head_hidden: int | None = None,
        head_dropout: float = 0.1,
        contrastive: bool = True,
        contrastive_lambda: float = 1.0,
        contrastive_margin: float = 0.02,
        contrastive_threshold: float = 0.5,
        contrastive_both_high: bool = False,
        weight_low: float = 0.3,
        weight_high: float = 1.0,
        device: str = "auto",
        precision: str = "auto",
        score_batch_size: int | None = None,
        seed: int = 0,
        verbose: bool = True,
        truncation: str = "middle",
    ):
        self.backbone = backbone
        self.max_length = max_length
        self.truncation = truncation
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.grad_clip = grad_clip
        self.use_lora = use_lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_layers = lora_layers
        self.target_modules = target_modules
        self.pooling = pooling
        self.head = head
        self.head_hidden = head_hidden
        self.head_dropout = head_dropout
        self.contrastive = contrastive
        self.contrastive_lambda = contrastive_lambda
        self.contrastive_margin = contrastive_margin
        self.contrastive_threshold = contrastive_threshold
        self.contrastive_both_high = contrastive_both_high
        self.weight_low = weight_low
        self.weight_high = weight_high
        self.device = device
        self.precision = precision
        self.score_batch_size = score_batch_size
        self.seed = seed
        self.verbose = verbose

    # sklearn-style parameter access -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return init_param_names(cls)

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor settings (scikit-learn convention)."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params):
        """Set constructor settings (scikit-learn convention); returns self."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(f"unknown parameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def _validate_settings(self) -> None:
        if self.pooling not in ("mean", "last"):
            raise ConfigError(f"pooling={self.pooling!r}; use 'mean' or 'last'")
        if self.head not in ("mlp", "linear"):
            raise ConfigError(f"head={self.head!r}; use 'mlp' or 'linear'")
        if self.truncation not in ("middle", "left", "right"):
            raise ConfigError(f"truncation={self.truncation!r}; use 'middle', 'left' or 'right'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision={self.precision!r}; use 'auto', 'fp32' or 'bf16'")
        for name in ("max_length", "batch_size", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.epochs > 0:
            raise ConfigError(f"epochs={self.epochs!r} must be > 0")

    # network -------------------------------------------------------------------------
    def _resolve_device(self) -> str:
        torch = _torch()
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _backbone_path(self) -> str:
        return str(self.backbone) if self.backbone is not None else default_backbone()

    def _build(self, two_heads: bool) -> None:
        """Load tokenizer + backbone once, wrap with LoRA, attach a fresh head."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch = _torch()
        from transformers import AutoModel, AutoTokenizer

        self._validate_settings()
        path = self._backbone_path()
        if not Path(path).exists():
            raise FileNotFoundError(
                f"backbone directory {path!r} does not exist; pass a local Hugging Face "
                "model directory (nothing is downloaded)"
            )
        if not self.verbose:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None:  # decoder-only models (Llama, Qwen) often ship without one
            tok.pad_token = tok.eos_token
        torch.manual_seed(int(self.seed))
        base = AutoModel.from_pretrained(path)
        base.config.use_cache = False
        for p in base.parameters():
            p.requires_grad_(False)
        hidden = int(base.config.hidden_size)
        if self.use_lora:
            from peft import LoraConfig, get_peft_model

            targets = list(self.target_modules or _detect_target_modules(base))
            layers = None
            if self.lora_layers is not None:
                n_layers = int(base.config.num_hidden_layers)
                k = int(self.lora_layers)
                if not 1 <= k <= n_layers:
                    raise ConfigError(f"lora_layers={k} must be in [1, {n_layers}]")
                layers = list(range(n_layers - k, n_layers))
            cfg = LoraConfig(
                r=int(self.lora_r),
                lora_alpha=self.lora_alpha,
                lora_dropout=self.lora_dropout,
                target_modules=targets,
                layers_to_transform=layers,
                bias="none",
            )
            with warnings.catch_warnings():
                # peft calls a transformers method deprecated in 5.x; nothing to act on.
                warnings.simplefilter("ignore", FutureWarning)
                base = get_peft_model(base, cfg)
        RewardNet, Head = _build_net_class()
        head = Head(hidden, self.head, int(self.head_hidden or hidden), self.head_dropout,
                    two_heads)
        device = self._resolve_device()
        self._device = device
        self._tok = tok
        self._net = RewardNet(base, hidden, self.pooling, head).to(device)
        self._two_heads = two_heads

    def _adapter_tensors(self) -> dict:
        """The per-model trainable tensors: LoRA weights and head (names are stable)."""
        net = self._net
        out = {}
        for n, p in net.backbone.named_parameters():
            if "lora_" in n:
                out["backbone." + n] = p
        for n, p in net.head.named_parameters():
            out["head." + n] = p
        return out

    def _reset_trainable(self, seed: int, y_train: np.ndarray) -> None:
        """Fresh LoRA (peft's default init) and head, seeded; output biases set from labels."""
        torch = _torch()
        torch.manual_seed(seed)
        with torch.no_grad():
            for n, p in self._net.backbone.named_parameters():
                if "lora_A" in n:
                    torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                elif "lora_B" in n:
                    torch.nn.init.zeros_(p)
            for m in self._net.head.modules():
                if isinstance(m, torch.nn.Linear):
                    m.reset_parameters()
            # Start the mean at the label mean so few epochs suffice on CPU.
            ybar = float(np.clip(np.mean(y_train), 0.01, 0.99))
            self._net.head.last_bias("mu").fill_(math.log(ybar / (1 - ybar)))
            if self._two_heads:
                # softplus(0) = 0.69 lies above the 0.5 clamp, where the clamp passes no
                # gradient: start the variance at the label variance instead.
                v0 = float(np.clip(np.var(y_train), 1e-3, 0.25))
                self._net.head.last_bias("sigma").fill_(math.log(math.expm1(v0)))

    def _tokenize(self, texts: list[str], prompts: list[str] | None = None) -> list[list[int]]:
        """Token ids, truncated to ``max_length``.

        With ``prompts`` (the reward-model contract) each text is a response read after its
        prompt, and the prompt is cut from the LEFT, never the response
        (:func:`._util.join_prompt_response`). Without prompts a text is a whole
        reward-model input cut by ``truncation``: the E.2 prompt ends with the candidate,
        the part being judged; plain right truncation would cut it first when the query
        input is long. ``"middle"`` keeps the first quarter (instruction) and the end
        (candidate) and drops the middle (input).
        """
        max_len = int(self.max_length)
        if prompts is not None:
            from ._util import join_prompt_response

            return [x for x, _, _ in join_prompt_response(self._tok, texts, prompts, max_len)]
        if self.truncation == "right":
            enc = self._tok(texts, truncation=True, max_length=max_len, padding=False)
            return enc["input_ids"]
        ids = self._tok(texts, truncation=False, padding=False)["input_ids"]
        head = max_len // 4 if self.truncation == "middle" else 0
        out = []
        for x in ids:
            if len(x) > max_len:
                x = x[:head] + x[len(x) - (max_len - head):]
            out.append(x)
        return out

    def _collate(self, ids: list[list[int]]):
        """Right-pad to the longest sequence of the batch (dynamic padding)."""
        torch = _torch()
        width = max(len(x) for x in ids)
        inp = torch.full((len(ids), width), int(self._tok.pad_token_id), dtype=torch.long)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            inp[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
            att[i, : len(x)] = 1
        return inp.to(self._device), att.to(self._device)

    def _use_bf16(self) -> bool:
        """bf16 autocast: asked for, or ``"auto"`` on a CUDA device that supports it."""
        torch = _torch()
        if self.precision == "bf16":
            return True
        if self.precision == "auto" and str(getattr(self, "_device", "cpu")).startswith("cuda"):
            return bool(torch.cuda.is_bf16_supported())
        return False  # CPU keeps fp32: bf16 matmuls are slower there and change scores

    def _score_bs(self) -> int:
        """Scoring batch: ``score_batch_size`` if set; 512 on CUDA; max(batch, 64) on CPU."""
        if self.score_batch_size is not None:
            return int(self.score_batch_size)
        if str(getattr(self, "_device", "cpu")).startswith("cuda"):
            return 512
        return max(int(self.batch_size), 64)

    def _autocast(self):
        torch = _torch()
        if self._use_bf16():
            return torch.autocast(device_type=self._device.split(":")[0], dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    # outputs and losses ----------------------------------------------------------------
    def _outputs(self, mu_raw, s_raw):
        torch = _torch()
        if self._kind == "global":
            return torch.sigmoid(mu_raw), None
        mu = torch.sigmoid(mu_raw)
        var = bounded_variance(s_raw) if s_raw is not None else None
        return mu, var

    def _loss(self, mu_raw, s_raw, y, w, g):
        raise NotImplementedError

    def _contrast(self, mu, y, g):
        if not self.contrastive or self.contrastive_lambda == 0:
            return 0.0
        return self.contrastive_lambda * high_score_contrastive(
            mu, y, g, threshold=self.contrastive_threshold, margin=self.contrastive_margin,
            both_high=self.contrastive_both_high,
        )

    def _sample_weights(self, y: np.ndarray) -> np.ndarray:
        return self.weight_low + (self.weight_high - self.weight_low) * np.clip(y, 0, 1)

    # loops -----------------------------------------------------------------------------
    def _batches(self, n: int, groups: np.ndarray, rng: np.random.Generator) -> list:
        """Shuffled batches that never split a query smaller than the batch size.

        Queries are visited in random order and packed whole into batches of at most
        ``batch_size`` rows, so the contrastive term sees all pairs of a query; a query
        larger than a batch is cut into batch-sized pieces.
        """
        if n == 0:
            return []
        bs = int(self.batch_size)
        n_groups = int(groups.max()) + 1
        group_rank = rng.permutation(n_groups)
        rows = rng.permutation(n)
        # Stable sort of shuffled rows by a random group rank: queries in random order,
        # rows within a query in random order, a query's rows adjacent.
        order = rows[np.argsort(group_rank[groups[rows]], kind="stable")]
        bounds = np.flatnonzero(np.diff(groups[order])) + 1
        batches: list = []
        current: list = []
        for piece in np.split(order, bounds):
            for s in range(0, len(piece), bs):
                part = piece[s : s + bs]
                if current and sum(map(len, current)) + len(part) > bs:
                    batches.append(np.concatenate(current))
                    current = []
                current.append(part)
        if current:
            batches.append(np.concatenate(current))
        return batches

    def _train(self, ids, y: np.ndarray, groups: np.ndarray, seed: int, desc: str) -> dict:
        torch = _torch()
        from tqdm.auto import tqdm

        self._reset_trainable(seed, y)
        net = self._net
        w_all = self._sample_weights(y)
        n = len(ids)
        rng = np.random.default_rng(seed)
        n_epochs = math.ceil(float(self.epochs))
        steps_per_epoch = len(self._batches(n, groups, np.random.default_rng(seed)))
        total_steps = max(1, round(float(self.epochs) * steps_per_epoch))
        lora_params = [p for n_, p in net.backbone.named_parameters() if p.requires_grad]
        head_params = list(net.head.parameters())
        param_groups = [{"params": head_params, "lr": self.head_lr}]
        if lora_params:
            param_groups.append({"params": lora_params, "lr": self.lr})
        opt = torch.optim.AdamW(param_groups, weight_decay=self.weight_decay)
        warm = max(1, round(self.warmup_ratio * total_steps))

        def sched(step):
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, sched)
        # np.array copies: inputs may be read-only views of a DataFrame.
        y_t = torch.tensor(np.array(y, dtype=np.float32), device=self._device)
        w_t = torch.tensor(np.array(w_all, dtype=np.float32), device=self._device)
        g_t = torch.tensor(np.array(groups, dtype=np.int64), device=self._device)

        t0 = time.perf_counter()
        # Without LoRA the backbone is frozen: encode once, then train the head alone.
        feats = None
        if not self.use_lora:
            feats = self._encode_all(ids, desc=f"{desc} features")

        epoch_losses: list[float] = []
        step = 0
        seen = 0
        net.train()
        for epoch in range(n_epochs):
            batches = self._batches(n, groups, rng)
            tot, cnt = 0.0, 0
            bar = tqdm(batches, desc=f"{desc} epoch {epoch + 1}/{n_epochs}",
                       disable=not self.verbose, leave=False)
            for b in bar:
                if step >= total_steps:
                    break
                bt = torch.as_tensor(b, dtype=torch.long, device=self._device)
                with self._autocast():
                    if feats is None:
                        inp, att = self._collate([ids[i] for i in b])
                        mu_raw, s_raw = net(inp, att)
                    else:
                        mu_raw, s_raw = net.head(feats[bt])
                loss = self._loss(mu_raw.float(), None if s_raw is None else s_raw.float(),
                                  y_t[bt], w_t[bt], g_t[bt])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in param_groups for p in g["params"]], self.grad_clip)
                opt.step()
                scheduler.step()
                step += 1
                seen += len(b)
                tot += float(loss.detach()) * len(b)
                cnt += len(b)
                bar.set_postfix(loss=f"{tot / cnt:.4f}")
            if cnt:
                epoch_losses.append(tot / cnt)
        net.eval()
        secs = time.perf_counter() - t0
        logger.info("%s: %d rows, %d samples seen in %.1f s (%.1f ms/sample), losses %s",
                    desc, n, seen, secs, 1000.0 * secs / max(seen, 1),
                    [round(x, 4) for x in epoch_losses])
        return {
            "epoch_losses": epoch_losses,
            "n_train": int(n),
            "samples_seen": int(seen),
            "seconds": secs,
            "ms_per_sample": 1000.0 * secs / max(seen, 1),
        }

    def _encode_all(self, ids, desc: str = "encode"):
        torch = _torch()
        from tqdm.auto import tqdm

        self._net.eval()
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = torch.empty((len(ids), self._net.hidden), dtype=torch.float32,
                          device=self._device)
        bs = self._score_bs()
        with torch.no_grad(), self._autocast():
            for s in tqdm(range(0, len(ids), bs), desc=desc, disable=not self.verbose,
                          leave=False):
                idx = order[s : s + bs]
                inp, att = self._collate([ids[i] for i in idx])
                out[torch.as_tensor(idx, device=self._device)] = self._net.encode(inp, att)
        return out

    def _infer(self, ids, desc: str = "score") -> tuple[np.ndarray, np.ndarray | None]:
        torch = _torch()
        from tqdm.auto import tqdm

        net = self._net
        net.eval()
        n = len(ids)
        # Length-sorted batches waste little on padding; outputs go back to input order.
        order = np.argsort([len(x) for x in ids], kind="stable")
        mu_out = np.empty(n, dtype=np.float64)
        var_out = np.empty(n, dtype=np.float64) if self._two_heads else None
        bs = self._score_bs()
        with torch.inference_mode(), self._autocast():
            for s in tqdm(range(0, n, bs), desc=desc, disable=not self.verbose, leave=False):
                idx = order[s : s + bs]
                inp, att = self._collate([ids[i] for i in idx])
                mu_raw, s_raw = net(inp, att)
                mu, var = self._outputs(mu_raw.float(), None if s_raw is None else s_raw.float())
                mu_out[idx] = mu.cpu().double().numpy()
                if var_out is not None:
                    var_out[idx] = var.cpu().double().numpy()
        return mu_out, var_out

    def _load_tensors(self, tensors: dict) -> None:
        torch = _torch()
        params = self._adapter_tensors()
        missing = set(params) - set(tensors)
        extra = set(tensors) - set(params)
        if missing or extra:
            raise InputFileError(
                f"saved reward-model weights do not match this network (missing "
                f"{sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}); load with the "
                "same backbone and settings that trained it"
            )
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(tensors[k].to(p.device, p.dtype))

    def _snapshot(self) -> dict:
        return {k: p.detach().cpu().clone() for k, p in self._adapter_tensors().items()}

    def _settings_json(self) -> dict:
        params = self.get_params()
        params["backbone"] = self._backbone_path()
        params["target_modules"] = (list(params["target_modules"])
                                    if params["target_modules"] is not None else None)
        return {"kind": self._kind, "class": type(self).__name__, "params": params,
                "versions": versions()}

