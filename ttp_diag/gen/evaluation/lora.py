"""Per-user LoRA fine-tuning of the policy (the OPPU-style training baseline).

The first paper draws per-user fine-tuning as the training-based alternative to Best-of-N
(its Fig. 1 baseline, appendix B.1 "TTP with a per-user LoRA training-based policy"). Here
one copy of the policy gets LoRA adapters (rank 8, alpha 16, dropout 0.05 on the attention
query/value projections, as the paper's reward models); for each user the adapters are
reset to the same seeded initial values and trained on the user's support items (prompt ->
the user's own output, loss on the output tokens only). The trained policy then decodes
greedily (``lora``) and samples ``N`` candidates that a reward model selects from
(``lora_bon_<rm>``).

The base policy is never modified: the copy is made with ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from ttp_diag.gen.evaluation.policy import PolicyModel
from ttp_diag.gen.evaluation.split import EvaluationInputError

__all__ = ["UserLoRA"]


class UserLoRA:
    """Per-user LoRA adapters on a copy of the policy.

    Parameters
    ----------
    policy : PolicyModel
        The base policy (its backend's model is copied, not changed).
    r, alpha, dropout : LoRA settings.
    epochs : int
        Passes over the user's support items.
    lr : float
        AdamW learning rate.
    batch_size : int
    seed : int
        Seed of the adapter initialisation and the data order (same for every user).

    Attributes
    ----------
    history_ : dict
        Per user: ``losses`` (mean loss per epoch), ``n_items``.

    Examples
    --------
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> lora = UserLoRA(PolicyModel(tiny_random_backend()), epochs=2, lr=1e-2)
    >>> pm_u = lora.fit_user("u1", ["ab", "cd"], ["xy", "zw"])
    >>> len(lora.history_["u1"]["losses"])
    2
    """

    def __init__(self, policy: PolicyModel, *, r: int = 8, alpha: int = 16,
                 dropout: float = 0.05, epochs: int = 3, lr: float = 5e-4,
                 batch_size: int = 4, seed: int = 0):
        self.policy = policy
        self.r, self.alpha, self.dropout = r, alpha, dropout
        self.epochs, self.lr, self.batch_size, self.seed = epochs, lr, batch_size, seed
        self._peft = None
        self.history_: dict[str, dict] = {}

    def _build(self):
        if self._peft is not None:
            return
        import torch
        from peft import LoraConfig, get_peft_model

        base = copy.deepcopy(self.policy.model)
        names = {n.split(".")[-1] for n, _ in base.named_modules()}
        targets = [t for t in ("q_proj", "v_proj", "query", "value") if t in names]
        if not targets:
            raise EvaluationInputError("the policy has no q_proj/v_proj modules for LoRA")
        torch.manual_seed(self.seed)
        cfg = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                         target_modules=targets, task_type="CAUSAL_LM")
        self._peft = get_peft_model(base, cfg)
        self._init = {n: p.detach().clone() for n, p in self._peft.named_parameters()
                      if p.requires_grad}

    def fit_user(self, user: str, prompts: Sequence[str], outputs: Sequence[str]) -> PolicyModel:
        """Train the adapters on one user's support items; return the adapted policy.

        The returned :class:`PolicyModel` (and its backend, for sampling) share the one
        adapted network: fit the next user only after using it.
        """
        import torch

        from ttp_diag.gen.backends import TransformersBackend

        if len(prompts) == 0:
            raise EvaluationInputError(
                f"user {user!r} has no support items to fine-tune on; give the user support "
                "items or leave out the lora methods")
        self._build()
        net, pm = self._peft, self.policy
        with torch.no_grad():
            for n, p in net.named_parameters():
                if n in self._init:
                    p.copy_(self._init[n])
        eos = pm.tokenizer.eos_token_id
        data = []
        for p, o in zip(prompts, outputs, strict=True):
            a, b = pm.prompt_ids(p), pm.completion_ids(o) + ([eos] if eos is not None else [])
            data.append((a, b))
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.lr)
        rng = np.random.default_rng(self.seed)
        net.train()
        losses = []
        for _ in range(int(self.epochs)):
            tot, cnt = 0.0, 0
            for s in range(0, len(data), self.batch_size):
                chunk = data[s : s + self.batch_size]
                L = max(len(a) + len(b) for a, b in chunk)
                ids = torch.zeros((len(chunk), L), dtype=torch.long)
                mask = torch.zeros_like(ids)
                labels = torch.full_like(ids, -100)
                for i, (a, b) in enumerate(chunk):
                    ids[i, : len(a) + len(b)] = torch.tensor(a + b)
                    mask[i, : len(a) + len(b)] = 1
                    labels[i, len(a): len(a) + len(b)] = torch.tensor(b)
                loss = net(input_ids=ids.to(pm.device), attention_mask=mask.to(pm.device),
                           labels=labels.to(pm.device)).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot, cnt = tot + float(loss.detach()) * len(chunk), cnt + len(chunk)
            losses.append(tot / cnt)
            data = [data[i] for i in rng.permutation(len(data))]  # next epoch's order
        net.eval()
        self.history_[str(user)] = {"losses": losses, "n_items": len(data)}
        be = pm.backend
        adapted = TransformersBackend(net, pm.tokenizer, device=be.device,
                                      use_chat_template=be.use_chat_template,
                                      first_line=be.first_line)
        adapted.name = f"{getattr(be, 'name', 'policy')}+lora[{user}]"
        return PolicyModel(adapted, batch_size=pm.batch_size)
