"""The settings of a pipeline run: one dataclass, its validation, and what derives from it.

Every field of :class:`RunConfig` carries ``field(metadata=...)`` with

``stage``
    The first stage whose result the setting changes (``"runtime"``: none; how fast, how
    verbose, how far). The pipeline refuses to resume a folder with a setting changed
    whose stage already has results (:func:`stage_of`).
``flag`` / ``help`` / ``parse`` / ``choices``
    The ``ttp-diag run`` flag (``None``: config file only); the CLI is built from these
    (:func:`cli_fields`), so a new setting is one field here.

The dataclass is kept end to end: :meth:`RunConfig.resolve` returns a new ``RunConfig``
with the task defaults filled in, and the pipeline reads attributes (``cfg.n``), never a
dict.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ttp_diag.exceptions import ConfigError, InputFileError

__all__ = [
    "RunConfig",
    "load_config",
    "stage_of",
    "cli_fields",
    "parse_shard",
    "rm_kind_names",
    "POLICIES",
    "BACKENDS",
]

#: The choice fields' values, defined once as types; their ``choices`` (checked on
#: construction, offered by the CLI) are read from these.
DataFormat = Literal["jsonl", "lamp", "longlamp"]
Policy = Literal["rag", "persona", "persona_rag"]
Backend = Literal["transformers", "hf", "vllm", "tiny", "tiny-random"]
GenMode = Literal["auto", "prefix", "batched"]
Order = Literal["given", "val_first"]
Label = Literal["rouge", "minilm"]

POLICIES = get_args(Policy)
BACKENDS = get_args(Backend)
#: The stages of a run, in order (``ttp-diag run --until``); ``runtime`` settings change none.
STAGES = ("data", "prompts", "candidates", "labels", "rms", "scores")
_STAGE_NAMES = (*STAGES, "runtime")


def _f(default: Any = dataclasses.MISSING, *, stage: str, flag: str | None = None,
       help: str = "", parse: str | None = None, choices: tuple | None = None,
       factory: Any = dataclasses.MISSING) -> Any:
    assert stage in _STAGE_NAMES, stage
    md = {"stage": stage, "flag": flag, "help": help, "parse": parse, "choices": choices}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def rm_kind_names() -> tuple[str, ...]:
    """Names of the reward-model registry (``ttp_diag.gen.reward_models.REGISTRY``)."""
    from ttp_diag.gen.reward_models import REGISTRY

    return tuple(REGISTRY)


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """``"I/K"`` -> ``(I, K)`` with ``0 <= I < K`` (I counts from 0, like a SLURM array
    ``--array=0-(K-1)``); ``None`` -> ``None``.

    Examples
    --------
    >>> parse_shard("2/3")
    (2, 3)
    """
    if shard is None:
        return None
    try:
        i, k = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like 'I/K' (e.g. '0/3'), got {shard!r}") from None
    if not (k >= 1 and 0 <= i < k):
        raise ConfigError(f"shard {shard!r}: need 0 <= I < K (I counts from 0)")
    return i, k


@dataclass
class RunConfig:
    """Everything a pipeline run depends on.

    Parameters
    ----------
    task : str
        ``lamp4``, ``lamp5``, ``longlamp_abstract``, ``longlamp_review``, ``longlamp_topic``.
    data_path : str
        A JSONL user file (``data_format="jsonl"``), a LaMP questions file (``"lamp"``,
        with ``outputs_path``) or a LongLaMP JSON/JSONL export (``"longlamp"``).
    strict : bool
        Make every skipped input record an error (passed to the data loaders).
    top_k_users, max_samples_per_user, val_fraction, min_items : see
        :func:`ttp_diag.gen.data.build_examples`; ``None`` means the task's paper default.
    users : list of str, optional
        Use exactly these users.
    retrieval_k : int
        Retrieved history items per prompt.
    policy : {"rag", "persona", "persona_rag"}
    persona_samples : int
        History samples per persona (the paper: 15).
    backend, model : str
        ``"transformers"`` with a local directory, a ``.gguf`` file or ``"smollm2"``;
        ``"vllm"`` with a local directory; ``"tiny"`` (random model, tests).
    device, dtype : str
        ``dtype=None``: bfloat16 on a CUDA GPU that has it, float32 on CPU.
    gen_mode : {"auto", "prefix", "batched"}
        :class:`ttp_diag.gen.backends.TransformersBackend` ``mode``.
    max_batch_rows : int, optional
        Sequences per ``generate`` call in the batched mode (default: from free GPU
        memory, read once per run, on CUDA; 256 on CPU).
    n, temperature, top_p, max_new_tokens, batch_size, seed, dedup, first_line :
        Candidate sampling (see :class:`ttp_diag.gen.candidates.CandidateGenerator`);
        ``batch_size=None`` is 4 prompts per call on CPU, 64 on CUDA;
        ``temperature=None`` is the task's paper default, ``dedup=None`` removes duplicates
        for short-form tasks only.
    order : {"given", "val_first"}
        ``val_first`` generates every validation query first and then training queries
        from the latest back, so a run stopped by ``candidate_time_budget_s`` still has the
        complete validation set and each user's latest training queries.
    shard : str, optional
        ``"I/K"``: this run does shard I (from 0) of K of the candidate, label and scoring
        stages; users are split into K contiguous blocks (see ``ttp_diag.gen.shards``).
    rm_from : str, optional
        A trained ``rm/`` folder (of a merged run) to score with instead of training.
    candidate_time_budget_s : float, optional
        Stop starting new candidate chunks after this many seconds (resume later, or go on
        with ``allow_partial=True``).
    allow_partial : bool
        Continue after the candidate stage with the queries that have candidates.
    label : {"rouge", "minilm"}
        The reward: ``(ROUGE-1 F + ROUGE-L F) / 2`` (the paper's) or the MiniLM cosine
        similarity to the gold text (its BERTScore variant).
    extra_labels : list of str
        Also store ``reward_<label>`` columns (e.g. ``["minilm"]``).
    label_workers : int, optional
        Processes for ROUGE (default: all cores; small inputs run in-process).
    rm_kinds : list of str
        Names of the reward-model registry (:func:`rm_kind_names`).
    rm_backbone : str, optional
        Reward-model backbone directory (default MiniLM).
    rm_data_pct : float
        Percent of each user's train-split queries (with all their candidates) the reward
        models train on; the rest of the table is still scored. The kept queries are drawn
        from ``seed`` and the user id, and nested: the 10% subset lies inside the 50% one
        (:func:`ttp_diag.gen.reward_models.tables.subsample_user_train`).
    rm_settings, rm_kind_settings : dict
        Passed to :func:`ttp_diag.gen.scoring.fit_reward_models`.
    num_threads, rm_num_threads : int, optional
        ``torch.set_num_threads`` for every torch stage / for the reward models.
    engine, ray_address, ray_workers : str, str, int
        ``"ray"`` runs candidates, labels and scoring on Ray Data actor pools
        (:mod:`ttp_diag.gen.ray_engine`; same files, same answer) at ``ray_address``
        (default: a local Ray started for the run) with ``ray_workers`` actors per stage.

    Examples
    --------
    >>> cfg = RunConfig(task="lamp4", data_path="users.jsonl.gz", model="smollm2", n=16)
    >>> cfg.resolve().temperature
    1.7
    """

    task: str = _f("lamp4", stage="data", flag="--task",
                   help="lamp4, lamp5, longlamp_abstract, longlamp_review, longlamp_topic")
    data_path: str = _f("", stage="data", flag="--data",
                        help="input file (JSONL users, LaMP questions or a LongLaMP export)")
    data_format: DataFormat = _f("jsonl", stage="data", flag="--data-format",
                                 choices=get_args(DataFormat))
    outputs_path: str | None = _f(None, stage="data", flag="--outputs",
                                  help="LaMP outputs file (with --data-format lamp)")
    strict: bool = _f(False, stage="data", flag="--strict", parse="bool",
                      help="any skipped input record is an error")
    top_k_users: int | None = _f(None, stage="data", flag="--users", parse="int",
                                 help="top-k users by number of items")
    max_samples_per_user: int | None = _f(None, stage="data", flag="--max-samples",
                                          parse="int", help="latest items kept per user")
    val_fraction: float = _f(0.2, stage="data", flag="--val-fraction", parse="float")
    min_items: int = _f(5, stage="data", flag="--min-items", parse="int")
    users: list[str] | None = _f(None, stage="data")
    retrieval_k: int = _f(3, stage="prompts", flag="--retrieval-k", parse="int")
    retrieval_max_chars: int | None = _f(None, stage="prompts")
    policy: Policy = _f("rag", stage="prompts", flag="--policy", choices=POLICIES)
    persona_samples: int = _f(15, stage="prompts")
    backend: Backend = _f("transformers", stage="candidates", flag="--backend",
                          choices=BACKENDS)
    model: str | None = _f(None, stage="candidates", flag="--model",
                           help="local model directory, .gguf file, or 'smollm2'")
    device: str = _f("cpu", stage="runtime", flag="--device")
    dtype: str | None = _f(None, stage="candidates", flag="--dtype",
                           help="float32, bfloat16, float16 (default: bf16 on CUDA, fp32 on CPU)")
    gen_mode: GenMode = _f("auto", stage="candidates", flag="--gen-mode",
                           choices=get_args(GenMode),
                       help="one call per prompt (prefix) or many (batched); auto: by device")
    backend_kwargs: dict[str, Any] = _f(stage="candidates", factory=dict)
    n: int = _f(30, stage="candidates", flag="--n", parse="int", help="samples per query")
    temperature: float | None = _f(None, stage="candidates", flag="--temperature",
                                   parse="float")
    top_p: float = _f(0.95, stage="candidates", flag="--top-p", parse="float")
    max_new_tokens: int | None = _f(None, stage="candidates", flag="--max-new-tokens",
                                    parse="int")
    batch_size: int | None = _f(None, stage="candidates", flag="--batch-size", parse="int",
                                help="prompts per backend call (default 4 on CPU, 64 on CUDA)")
    max_batch_rows: int | None = _f(None, stage="candidates", flag="--max-batch-rows",
                                    parse="int",
                                    help="sequences per generate call in the batched mode "
                                    "(default: from free GPU memory on CUDA)")
    seed: int = _f(0, stage="candidates", flag="--seed", parse="int")
    dedup: bool | None = _f(None, stage="candidates")
    first_line: bool | None = _f(None, stage="candidates")
    order: Order = _f("given", stage="data", flag="--order", choices=get_args(Order))
    shard: str | None = _f(None, stage="candidates", flag="--shard",
                           help="I/K: run shard I (from 0) of K (candidates, labels, scores)")
    rm_from: str | None = _f(None, stage="rms", flag="--rm-from",
                             help="score with the trained rm/ folder of a merged run")
    candidate_time_budget_s: float | None = _f(None, stage="runtime", flag="--time-budget",
                                               parse="float",
                                               help="seconds of candidate generation")
    allow_partial: bool = _f(False, stage="runtime", flag="--allow-partial", parse="bool",
                             help="continue with the queries that have candidates")
    label: Label = _f("rouge", stage="labels", flag="--label", choices=get_args(Label),
                    help="the reward label (default rouge)")
    extra_labels: list[str] = _f(stage="labels", factory=list, flag="--extra-labels",
                                 parse="list", help="comma-separated extra reward columns")
    label_workers: int | None = _f(None, stage="runtime")
    rm_kinds: list[str] = _f(stage="rms", factory=lambda: ["global", "det", "prob"],
                             flag="--rm-kinds", parse="list",
                             help="comma-separated reward-model registry names")
    rm_backbone: str | None = _f(None, stage="rms", flag="--rm-backbone",
                                 help="reward-model backbone directory (default MiniLM)")
    rm_data_pct: float = _f(100.0, stage="rms", flag="--rm-data-pct", parse="float",
                            help="percent of each user's train queries the reward models "
                            "train on (in (0, 100]; seeded and nested: 10%% is a subset of 50%%)")
    rm_settings: dict[str, Any] = _f(stage="rms", factory=dict)
    rm_kind_settings: dict[str, dict[str, Any]] = _f(stage="rms", factory=dict)
    num_threads: int | None = _f(None, stage="runtime", flag="--threads", parse="int",
                                 help="torch threads")
    rm_num_threads: int | None = _f(None, stage="runtime")
    progress: bool = _f(True, stage="runtime")
    engine: str = _f("local", stage="runtime", flag="--engine", choices=("local", "ray"),
                     help="run candidates, labels and scores in this process (local) or on "
                     "Ray Data actor pools (ray; needs the ray extra)")
    ray_address: str | None = _f(None, stage="runtime", flag="--address",
                                 help="Ray cluster address (default: a local Ray for the run)")
    ray_workers: int | None = _f(None, stage="runtime", flag="--ray-workers", parse="int",
                                 help="Ray actors per stage (default: the cluster's CPUs, or "
                                 "GPUs with --device cuda)")

    def resolve(self) -> RunConfig:
        """A copy with the task's paper defaults filled in (``None`` settings)."""
        from ttp_diag.gen.data import get_task

        spec = get_task(self.task)
        ch: dict[str, Any] = {"task": spec.name}
        if self.top_k_users is None:
            ch["top_k_users"] = spec.top_k_users
        if self.max_samples_per_user is None:
            ch["max_samples_per_user"] = spec.max_samples_per_user
        if self.temperature is None:
            ch["temperature"] = spec.temperature
        if self.dedup is None:
            ch["dedup"] = not spec.long_form
        if self.first_line is None:
            ch["first_line"] = not spec.long_form
        if self.max_new_tokens is None:
            ch["max_new_tokens"] = 256 if spec.long_form else 32
        if self.batch_size is None:
            # Chunks fix the seeds, so this is a result setting: recorded resolved.
            ch["batch_size"] = 64 if str(self.device).startswith("cuda") else 4
        if self.retrieval_max_chars is None and spec.long_form:
            ch["retrieval_max_chars"] = 1000
        return dataclasses.replace(self, **ch)

    def resolved(self) -> dict:
        """:meth:`resolve` as a plain dict (what ``config.json`` holds)."""
        return dataclasses.asdict(self.resolve())

    def __post_init__(self) -> None:
        self._check_values()

    def validate(self) -> None:
        """Raise :class:`~ttp_diag.exceptions.ConfigError` naming the first bad or missing
        setting and its allowed values.

        The values are checked on construction already (so ``RunConfig(n=0)`` and
        ``dataclasses.replace(cfg, n=0)`` fail at once); this adds what a run needs besides
        (``data_path``, ``model``), which a partly filled config may still lack.
        """
        if not self.data_path:
            raise ConfigError(
                "data_path is required (a JSONL user file, LaMP questions or a LongLaMP export)"
            )
        self._check_values()
        if self.backend not in ("tiny", "tiny-random") and not self.model:
            raise ConfigError(
                f"backend {self.backend!r} needs model= "
                "(a local directory, a .gguf file or 'smollm2')"
            )

    def _check_values(self) -> None:
        for f in dataclasses.fields(self):
            ch, v = f.metadata.get("choices"), getattr(self, f.name)
            if ch and v not in ch:
                raise ConfigError(f"{f.name} must be one of {list(ch)}, got {v!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"n (samples per query) must be an integer >= 1, got {self.n!r}")
        self._validate_numbers()
        for name in ("batch_size", "max_batch_rows", "ray_workers"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        for lab in [self.label, *self.extra_labels]:
            if lab not in get_args(Label):
                raise ConfigError(f"unknown label {lab!r}; use 'rouge' or 'minilm'")
        pct = self.rm_data_pct
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 < pct <= 100:
            raise ConfigError(
                f"rm_data_pct must be a percent in (0, 100] (share of each user's reward-model "
                f"training queries kept; 100 keeps all), got {pct!r}"
            )
        names = rm_kind_names()
        bad = [k for k in self.rm_kinds if k not in names]
        if bad or not self.rm_kinds:
            raise ConfigError(
                f"unknown rm_kinds {bad or '[] (empty)'}; use names of the reward-model "
                f"registry: {list(names)}"
            )
        sh = parse_shard(self.shard)
        if sh is not None and sh[1] > 1 and self.order != "given":
            raise ConfigError(
                "shard needs order='given' (users in contiguous blocks); "
                f"got order={self.order!r}"
            )

    def _validate_numbers(self) -> None:
        """Counts, rates and budgets: whole numbers >= 1, finite numbers in their range (the
        flag is named as well as the setting, since ``--users`` is ``top_k_users``)."""
        from ttp_diag._checks import check_int, check_real

        flags = {f.name: f.metadata.get("flag") for f in dataclasses.fields(self)}

        def nm(name: str) -> str:
            return f"{name} ({flags[name]})" if flags.get(name) else name

        for name, minimum, what in (
                ("top_k_users", 1, "a number of users"),
                ("max_samples_per_user", 1, "a number of items per user"),
                ("min_items", 1, "a number of items per user"),
                ("retrieval_k", 0, "a number of retrieved items"),
                ("persona_samples", 1, "a number of items"),
                ("max_new_tokens", 1, "a number of tokens"),
                ("seed", 0, "a seed"),
                ("num_threads", 1, "a number of threads"),
                ("rm_num_threads", 1, "a number of threads"),
                ("label_workers", 1, "a number of workers"),
                ("retrieval_max_chars", 1, "a number of characters")):
            check_int(getattr(self, name), nm(name), minimum=minimum, what=what,
                      allow_none=name != "seed")
        check_real(self.val_fraction, nm("val_fraction"), low=0, high=1, low_open=True,
                   high_open=True, what="a share of each user's items")
        check_real(self.top_p, nm("top_p"), low=0, high=1, low_open=True,
                   what="a nucleus probability")
        check_real(self.temperature, nm("temperature"), low=0, what="a sampling temperature",
                   allow_none=True)
        check_real(self.candidate_time_budget_s, nm("candidate_time_budget_s"), low=0,
                   what="a number of seconds (0: stop at once, resumable)", allow_none=True)


def stage_of(name: str) -> str:
    """The first stage a setting changes (``"runtime"``: none).

    Examples
    --------
    >>> stage_of("temperature"), stage_of("device")
    ('candidates', 'runtime')
    """
    return {f.name: f.metadata["stage"] for f in dataclasses.fields(RunConfig)}.get(name, "data")


def cli_fields() -> list[dataclasses.Field]:
    """The fields that have a ``ttp-diag run`` flag, in declaration order."""
    return [f for f in dataclasses.fields(RunConfig) if f.metadata.get("flag")]


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a :class:`RunConfig` from JSON (or TOML with a ``.toml`` suffix)."""
    path = Path(path)
    try:
        if path.suffix == ".toml":
            import tomllib

            raw = tomllib.loads(path.read_text())
        else:
            raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({exc}); "
                             "fix the file or write it again") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected an object of settings, got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return RunConfig(**raw)
