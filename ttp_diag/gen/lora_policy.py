"""Best-of-N on top of the per-user LoRA policy: a score table of the fine-tuned policy.

The first paper's appendix B.1 ("TTP with a per-user LoRA training-based policy", Fig. A2)
fine-tunes the policy per user and lets the reward models trained on the RAG policy's
candidates select among the fine-tuned policy's samples. :func:`lora_policy_run` does that
for a finished run folder:

1. for each user, :class:`~ttp_diag.gen.evaluation.lora.UserLoRA` trains LoRA adapters of the
   run's policy on the user's train-split items (zero-shot prompt -> the user's own output);
2. the adapted policy samples ``n`` candidates for each of the user's ``val`` queries (the
   run's temperature, top-p and token limit; duplicates removed as in the run);
3. the candidates get the run's ROUGE reward against the gold and the scores of the run's
   trained reward models (``<run>/rm``, loaded, not retrained).

The result, ``OUT/scores.parquet``, is a score table like the run's (``split == "val"``
only), so every analysis of the package reads it. One file per user under ``OUT/users/`` is
written atomically; a finished user is skipped when the command is run again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from ttp_diag.exceptions import ConfigError, RunFolderError
from ttp_diag.gen.run_config import load_config
from ttp_diag.io import atomic_write_json, atomic_write_parquet

__all__ = ["lora_policy_run"]


def _user_file(out: Path, user: str) -> Path:
    import hashlib

    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(user))[:60]
    return out / "users" / f"{safe}-{hashlib.sha1(str(user).encode()).hexdigest()[:8]}.parquet"


def lora_policy_run(run_dir: str | os.PathLike, out: str | os.PathLike, *, epochs: int = 2,
                    lr: float = 5e-4, r: int = 8, n: int | None = None,
                    max_support: int = 32, seed: int | None = None,
                    rm_kinds: list[str] | None = None, backend=None,
                    log=None) -> pd.DataFrame:
    """Sample from a per-user LoRA policy and score with the run's reward models.

    Parameters
    ----------
    run_dir : path
        A finished ``ttp-diag run`` folder (``prompts.parquet``, ``rm/``).
    out : path
        Output folder (``scores.parquet``, ``users/``, ``config.json``).
    epochs, lr, r : LoRA training settings (see :class:`UserLoRA`).
    n : int, optional
        Candidates per query (default: the run's ``n``).
    max_support : int
        Latest train items per user the adapters train on.
    seed : int, optional
        Default: the run's seed.
    rm_kinds : list of str, optional
        Reward models to score with (default: the run's).
    backend : optional
        A transformers backend to use instead of the run's (tests pass the tiny one).
    log : callable, optional
        Receives one progress line per user (default: print to stderr).

    Returns
    -------
    pandas.DataFrame
        The score table (also in ``OUT/scores.parquet``).
    """
    from ttp_diag.gen.backends import make_backend
    from ttp_diag.gen.evaluation.lora import UserLoRA
    from ttp_diag.gen.evaluation.policy import PolicyModel, icl_prompt
    from ttp_diag.gen.labels import label_table
    from ttp_diag.gen.scoring import (
        PIPELINE_RM_INPUT,
        add_rm_inputs,
        load_reward_models,
        score_table,
    )

    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    run_dir, out = Path(run_dir), Path(out)
    for need in ("config.json", "prompts.parquet", "rm"):
        if not (run_dir / need).exists():
            raise FileNotFoundError(f"{run_dir / need} not found; give a finished `ttp-diag run` "
                                    "folder (reward models trained)")
    cfg = load_config(run_dir / "config.json").resolve()
    if cfg.label != "rouge":
        raise ConfigError(f"{run_dir} uses label={cfg.label!r}; the LoRA policy run labels with "
                         "ROUGE only (label='rouge')")
    kinds = list(rm_kinds or cfg.rm_kinds)
    n = int(n or cfg.n)
    seed = int(cfg.seed if seed is None else seed)
    settings = {"parent": str(run_dir.resolve()), "epochs": epochs, "lr": lr, "r": r, "n": n,
                "max_support": max_support, "seed": seed, "rm_kinds": kinds}
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old != settings:
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise RunFolderError(f"{out} was made with other settings ({diff}); use another folder "
                             "or the same settings to resume")
    atomic_write_json(cfg_path, settings)

    prompts = pd.read_parquet(run_dir / "prompts.parquet")
    users = list(dict.fromkeys(prompts["user_id"].astype(str)))
    todo = [u for u in users if not _user_file(out, u).is_file()]
    if todo:
        if cfg.num_threads:
            import torch

            torch.set_num_threads(int(cfg.num_threads))
        if backend is None:
            kw = dict(cfg.backend_kwargs, first_line=cfg.first_line)
            if cfg.backend in ("transformers", "hf"):
                kw.update(device=cfg.device, dtype=cfg.dtype, num_threads=cfg.num_threads,
                          mode=cfg.gen_mode)
            backend = make_backend(cfg.backend, cfg.model, **kw)
        trainer = UserLoRA(PolicyModel(backend), r=r, epochs=epochs, lr=lr, seed=seed)
        models = load_reward_models(run_dir / "rm", kinds=kinds, backbone=cfg.rm_backbone)
    for i, u in enumerate(users, 1):
        f = _user_file(out, u)
        if f.is_file():
            log(f"[{i}/{len(users)}] {u}: finished before, skipped")
            continue
        t0 = time.perf_counter()
        mine = prompts[prompts["user_id"].astype(str) == u].sort_values("position")
        sup = mine[mine["split"] == "train"].tail(max_support)
        val = mine[mine["split"] == "val"]
        pm = trainer.fit_user(u, [icl_prompt(cfg.task, b) for b in sup["body"]],
                              sup["output"].tolist())
        samples = pm.backend.generate([icl_prompt(cfg.task, b) for b in val["body"]], n=n,
                                      temperature=float(cfg.temperature), top_p=cfg.top_p,
                                      max_new_tokens=int(cfg.max_new_tokens), seed=seed)
        rows = []
        for q, s in zip(val.itertuples(), samples, strict=True):
            texts = [t.strip() for t in s]
            if cfg.dedup:
                texts = list(dict.fromkeys(texts))
            texts = [t for t in texts if t] or [""]
            rows += [{"user_id": u, "query_id": q.query_id, "cand_id": j, "split": "val",
                      "text": t, "body": q.body, "gold": q.output} for j, t in enumerate(texts)]
        table = label_table(pd.DataFrame(rows), text_col="text", gold_col="gold",
                            out_col="reward", n_jobs=1, progress=False)
        table = add_rm_inputs(table, cfg.task, input_col="body", text_col="text",
                              prompt_col=PIPELINE_RM_INPUT["rm_prompt_col"])
        scores = score_table(table, models, **PIPELINE_RM_INPUT).drop(columns=["gold", "body"])
        atomic_write_parquet(scores, f)
        loss = trainer.history_.get(u, {}).get("losses", [float("nan")])
        log(f"[{i}/{len(users)}] {u}: LoRA on {len(sup)} items (loss {loss[0]:.2f} -> "
            f"{loss[-1]:.2f}), {len(scores)} candidates for {len(val)} queries in "
            f"{time.perf_counter() - t0:.0f} s")
    table = pd.concat([pd.read_parquet(_user_file(out, u)) for u in users], ignore_index=True)
    atomic_write_parquet(table, out / "scores.parquet")
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m ttp_diag.gen.lora_policy RUN_DIR OUT [...]``: ``ttp-diag lora-policy``."""
    from ttp_diag.cli import main as cli_main

    return cli_main(["lora-policy", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
