"""The LoRA network of the paper's reward models: backbone (+ LoRA) -> pooling -> head(s)."""

from __future__ import annotations

from ttp_diag.exceptions import ConfigError

from ._util import _torch


def _detect_target_modules(model) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"], ["c_attn"]):
        if all(p in names for p in pair):
            return pair
    raise ConfigError(
        "could not find attention query/value projections in the backbone (looked for "
        "query/value, q_proj/v_proj, q_lin/v_lin, c_attn); pass target_modules=[...]"
    )



def _build_net_class():
    from ..retrieval import mean_pool

    torch = _torch()
    nn = torch.nn

    class _Head(nn.Module):
        def __init__(self, hidden: int, kind: str, head_hidden: int, dropout: float, two: bool):
            super().__init__()

            def make():
                if kind == "linear":
                    return nn.Linear(hidden, 1)
                return nn.Sequential(
                    nn.Linear(hidden, head_hidden), nn.GELU(), nn.Dropout(dropout),
                    nn.Linear(head_hidden, 1),
                )

            self.mu = make()
            self.sigma = make() if two else None

        def last_bias(self, which: str):
            mod = getattr(self, which)
            return (mod if isinstance(mod, nn.Linear) else mod[-1]).bias

        def forward(self, h):
            mu_raw = self.mu(h).squeeze(-1)
            s_raw = self.sigma(h).squeeze(-1) if self.sigma is not None else None
            return mu_raw, s_raw

    class RewardNet(nn.Module):
        """Backbone (+ LoRA) -> pooling -> head(s)."""

        def __init__(self, backbone, hidden: int, pooling: str, head: _Head):
            super().__init__()
            self.backbone = backbone
            self.pooling = pooling
            self.head = head
            self.hidden = hidden

        def encode(self, input_ids, attention_mask):
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
            hid = out.last_hidden_state
            mask = attention_mask.to(hid.dtype)
            if self.pooling == "mean":
                pooled = mean_pool(hid, attention_mask)
            else:  # last non-padding token, whichever side the tokenizer pads
                pos = torch.arange(mask.shape[1], device=mask.device)
                last = (attention_mask.long() * pos).argmax(1)
                pooled = hid[torch.arange(hid.shape[0], device=hid.device), last]
            return pooled.float()

        def forward(self, input_ids, attention_mask):
            return self.head(self.encode(input_ids, attention_mask))

    return RewardNet, _Head


