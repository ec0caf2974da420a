"""Reward-model sweeps over a finished run: one run folder per setting, earlier stages reused.

The first paper's appendix B ablations change the reward model only (LoRA rank, the share of
each user's training data, the loss terms, pooling, the head), so every sweep point reuses
the parent run's data, prompts, candidates and labels and trains and scores its own reward
models:

``SWEEPDIR/<param>=<value>/``
    A run folder: the parent's ``examples``, ``items``, ``prompts``, ``candidates`` and
    ``labeled`` tables hard-linked (copied across file systems), its own ``config.json``,
    ``rm/`` and ``scores.parquet``. The folder is assembled under a temporary name and
    renamed into place, so it either holds every cached stage or does not exist.
``SWEEPDIR/sweep.json``
    The manifest: the parent folder and, per point, the parameter, value, folder, reward
    models and whether the value is the parent's own setting (the *full model*). A full-model
    point links the parent's trained reward models (``rm/<kind>``) and only scores.

A point whose ``scores.parquet`` exists is skipped, so the same command resumes a stopped
sweep (one sweep process per folder: ``SWEEPDIR/.lock``); a point stopped while training
resumes inside :func:`run_pipeline` (per-user reward models already saved are loaded).
Results: :func:`ttp_diag.analysis.sweeps.sweep_table`.

================  ==========================================  ===========================
parameter         values                                      changes
================  ==========================================  ===========================
``lora_rank``     integers (paper: 2, 4, 8, 16)               ``rm_settings["lora_r"]``
``data_pct``      percents in (0, 100] (paper: 10, 25, 50)    ``RunConfig.rm_data_pct``
``loss``          ``mse``, ``mse+contrastive``, ``nll``,      reward model ``det`` (MSE)
                  ``nll+contrastive``                         or ``prob`` (NLL), with or
                                                              without the contrastive term
``pooling``       ``mean``, ``last``                          ``rm_settings["pooling"]``
``head``          ``mlp``, ``linear``                         ``rm_settings["head"]``
``use_lora``      ``true``, ``false``                         ``rm_settings["use_lora"]``
``contrastive``   ``true``, ``false``                         ``rm_settings["contrastive"]``
any other         a constructor setting of the LoRA reward    ``rm_settings[name]``
                  models (``epochs``, ``lr``, ``lora_alpha``)
================  ==========================================  ===========================
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttp_diag.exceptions import ConfigError
from ttp_diag.gen.run_config import RunConfig, load_config
from ttp_diag.gen.run_folder import RunLock
from ttp_diag.io import atomic_dir, atomic_write_json

__all__ = ["SweepPoint", "SWEEP_PARAMS", "LOSSES", "parse_param", "plan_sweep", "run_sweep"]

#: The parent's files a point reuses (those present are linked; the others are not needed).
CACHED_FILES = ("examples.parquet", "items.parquet", "data_summary.json", "prompts.parquet",
                "personas.json", "candidates.parquet", "labeled.parquet")
MANIFEST = "sweep.json"

#: Named sweep parameters: ``name -> (RunConfig field or rm_settings key, type)``.
SWEEP_PARAMS: dict[str, tuple[str, type]] = {
    "lora_rank": ("rm_settings.lora_r", int),
    "data_pct": ("rm_data_pct", float),
    "loss": ("loss", str),
    "pooling": ("rm_settings.pooling", str),
    "head": ("rm_settings.head", str),
    "use_lora": ("rm_settings.use_lora", bool),
    "contrastive": ("rm_settings.contrastive", bool),
}
#: Loss decomposition (Table A5): value -> (reward-model kind, contrastive term on).
LOSSES = {"mse": ("det", False), "mse+contrastive": ("det", True),
          "nll": ("prob", False), "nll+contrastive": ("prob", True)}
_CHOICES = {"pooling": ("mean", "last"), "head": ("mlp", "linear"), "loss": tuple(LOSSES)}


@dataclasses.dataclass
class SweepPoint:
    """One point: ``param=value``, its folder name and the run settings it trains with."""

    param: str
    value: Any
    config: RunConfig
    is_default: bool

    @property
    def name(self) -> str:
        v = str(self.value).lower() if isinstance(self.value, bool) else self.value
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"{self.param}={v}"


def _convert(name: str, text: str, typ: type) -> Any:
    t = text.strip()
    try:
        if typ is bool:
            if t.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError  # internal: caught just below, re-raised as ConfigError
            return t.lower() in ("true", "1", "yes")
        if typ is int:
            return int(t)
        if typ is float:
            return float(t)
    except ValueError:
        raise ConfigError(f"--param {name}: {t!r} is not a valid {typ.__name__}; e.g. "
                         f"{name}={'true,false' if typ is bool else '4,8,16'}") from None
    if typ is str:
        return t
    # a generic reward-model setting: JSON when it parses (numbers, true/false), else text
    try:
        return json.loads(t)
    except ValueError:
        return t


def _rm_param_names() -> set[str]:
    from ttp_diag.gen.reward_models import get_model_class

    names: set[str] = set()
    for kind in ("global", "det", "prob"):
        names |= set(get_model_class(kind)._param_names())
    return names - {"backbone", "verbose", "device", "output_dir", "kind", "text_col"}


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``"lora_rank=4,8,16"`` -> ``("lora_rank", [4, 8, 16])``, values checked.

    Examples
    --------
    >>> parse_param("lora_rank=4, 8")
    ('lora_rank', [4, 8])
    >>> parse_param("loss=nll,mse+contrastive")
    ('loss', ['nll', 'mse+contrastive'])
    """
    if "=" not in spec:
        raise ConfigError(f"--param {spec!r}: write NAME=V1,V2,... (e.g. lora_rank=4,8,16)")
    name, _, vals = spec.partition("=")
    name = name.strip()
    texts = [v for v in vals.split(",") if v.strip()]
    if not texts:
        raise ConfigError(f"--param {spec!r}: no values after '='; e.g. {name}=4,8,16")
    if name in SWEEP_PARAMS:
        typ = SWEEP_PARAMS[name][1]
    elif name in _rm_param_names():
        typ = object  # parsed as JSON where possible
    else:
        raise ConfigError(f"--param {name!r}: unknown sweep parameter; use one of "
                         f"{sorted(SWEEP_PARAMS)} or a reward-model setting "
                         f"({', '.join(sorted(_rm_param_names()))})")
    values = [_convert(name, t, typ) for t in texts]
    if name in _CHOICES:
        bad = [v for v in values if v not in _CHOICES[name]]
        if bad:
            raise ConfigError(f"--param {name}: {bad} not allowed; use {list(_CHOICES[name])}")
    if name == "data_pct":
        bad = [v for v in values if not 0 < v <= 100]
        if bad:
            raise ConfigError(f"--param data_pct: {bad} outside (0, 100]; give percents of "
                             "each user's training queries, e.g. data_pct=10,25,50,100")
    if name == "lora_rank" and any(v < 1 for v in values):
        raise ConfigError(f"--param lora_rank: ranks must be >= 1, got {values}")
    return name, list(dict.fromkeys(values))


def _parent_config(parent: Path) -> RunConfig:
    if not (parent / "config.json").is_file():
        raise FileNotFoundError(f"{parent / 'config.json'} not found; --run-dir must be a "
                                "`ttp-diag run` folder")
    if not (parent / "labeled.parquet").is_file():
        raise FileNotFoundError(
            f"{parent / 'labeled.parquet'} not found: the parent run has no labels yet; run "
            f"`ttp-diag run --run-dir {parent} --until labels` (or to the end) first")
    cfg = load_config(parent / "config.json")
    if cfg.shard is not None:
        raise ConfigError(f"{parent} is one shard ({cfg.shard}); sweep over the merged run")
    return cfg


def _point_config(base: RunConfig, param: str, value: Any, kinds: Sequence[str]) -> RunConfig:
    rm = dict(base.rm_settings)
    ch: dict[str, Any] = {"rm_kinds": list(kinds), "rm_from": None}
    if param == "loss":
        kind, con = LOSSES[value]
        ch["rm_kinds"] = [kind]
        rm["contrastive"] = con
    elif param == "data_pct":
        ch["rm_data_pct"] = float(value)
    else:
        rm[SWEEP_PARAMS.get(param, (f"rm_settings.{param}",))[0].split(".", 1)[1]] = value
    ch["rm_settings"] = rm
    return dataclasses.replace(base, **ch)


def _default_value(base: RunConfig, param: str, kinds: Sequence[str]) -> Any:
    """The parent's own setting of ``param`` (its value marks the *full model*)."""
    if param == "loss":
        return "nll+contrastive" if base.rm_settings.get("contrastive", True) else "nll"
    if param == "data_pct":
        return float(base.rm_data_pct)
    key = SWEEP_PARAMS.get(param, (f"rm_settings.{param}",))[0].split(".", 1)[1]
    if key in base.rm_settings:
        return base.rm_settings[key]
    import inspect

    from ttp_diag.gen.reward_models import get_model_class
    from ttp_diag.gen.reward_models.training import LoRATrainer

    for cls in (get_model_class(kinds[0]), LoRATrainer):
        for klass in cls.__mro__:
            p = inspect.signature(klass.__init__).parameters.get(key)
            if p is not None and p.default is not inspect.Parameter.empty:
                return p.default
    return None


def plan_sweep(parent: str | os.PathLike, params: Sequence[str | tuple[str, list]], *,
               rm_kinds: Sequence[str] = ("prob",), **overrides: Any) -> list[SweepPoint]:
    """The points of a sweep, in order, without running anything.

    Parameters
    ----------
    parent : path
        A ``ttp-diag run`` folder with labels (``labeled.parquet``).
    params : sequence
        ``"name=v1,v2"`` strings or ``(name, values)`` pairs (see :func:`parse_param`).
    rm_kinds : sequence of str, default ("prob",)
        Reward models every point trains (``loss`` chooses its own).
    **overrides
        Runtime settings of every point (``num_threads``, ``progress``, ``device``).
    """
    parent = Path(parent)
    base = _parent_config(parent)
    bad = [k for k in overrides if k not in {f.name for f in dataclasses.fields(RunConfig)}]
    if bad:
        raise ConfigError(f"unknown RunConfig setting(s) {bad}")
    from ttp_diag.gen.run_config import stage_of

    not_rt = [k for k in overrides if stage_of(k) != "runtime"]
    if not_rt:
        raise ConfigError(f"{not_rt} change results; a sweep point may only change the reward "
                         "models (give them as --param) and runtime settings")
    base = dataclasses.replace(base, **overrides)
    points = []
    for spec in params:
        name, values = parse_param(spec) if isinstance(spec, str) else spec
        default = _default_value(base, name, rm_kinds)
        for v in values:
            cfg = _point_config(base, name, v, rm_kinds)
            cfg.validate()
            points.append(SweepPoint(name, v, cfg, is_default=(v == default)))
    names = [p.name for p in points]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"sweep points {dup} given twice; list each value once")
    return points


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


_RM_FIELDS = ("rm_settings", "rm_kind_settings", "rm_data_pct", "rm_backbone")


def _stage_point(parent: Path, point: SweepPoint, folder: Path, base: RunConfig) -> None:
    """Make ``folder`` with the parent's cached stages and the point's config, atomically.

    When the point trains with the parent's own reward-model settings (the full model), the
    parent's trained ``rm/<kind>`` folders are linked too: the pipeline then loads them (the
    saved settings and training rows match) instead of training the same model again.
    """
    if folder.is_dir():
        return
    # replace=False: a folder another process staged first is kept (it may be running)
    with atomic_dir(folder, replace=False) as tmp:
        for name in CACHED_FILES:
            if (parent / name).is_file():
                _link_or_copy(parent / name, tmp / name)
        if point.is_default or all(getattr(point.config, k) == getattr(base, k)
                                   for k in _RM_FIELDS):
            for kind in point.config.rm_kinds:
                if (parent / "rm" / kind).is_dir():
                    shutil.copytree(parent / "rm" / kind, tmp / "rm" / kind,
                                    copy_function=_link_or_copy)
        atomic_write_json(tmp / "config.json", dataclasses.asdict(point.config.resolve()))
        summ: dict = {}
        with contextlib.suppress(OSError, ValueError):
            summ = json.loads((parent / "run_summary.json").read_text())
        stages = {k: v for k, v in summ.get("stages", {}).items()
                  if k in ("data", "prompts", "candidates", "labels")}
        atomic_write_json(tmp / "run_summary.json",
                          {"stages": stages, "sweep_parent": str(parent.resolve()),
                           "versions": summ.get("versions", {})})


def _write_manifest(out: Path, parent: Path, points: Sequence[SweepPoint]) -> None:
    path = out / MANIFEST
    old: dict = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    if old.get("parent") and Path(old["parent"]).resolve() != parent.resolve():
        raise ConfigError(f"{out} is a sweep of {old['parent']}, not of {parent}; use another "
                         "--out folder")
    entries = {e["dir"]: e for e in old.get("points", [])}
    for p in points:
        entries[p.name] = {"param": p.param, "value": p.value, "dir": p.name,
                           "rm_kinds": list(p.config.rm_kinds), "is_default": p.is_default}
    atomic_write_json(path, {"parent": str(parent.resolve()), "points": list(entries.values())})


def run_sweep(parent: str | os.PathLike, out: str | os.PathLike,
              params: Sequence[str | tuple[str, list]], *, rm_kinds: Sequence[str] = ("prob",),
              log=None, **overrides: Any) -> list[dict]:
    """Run (or resume) a reward-model sweep over a finished run's candidates.

    Parameters
    ----------
    parent : path
        A ``ttp-diag run`` folder with labels.
    out : path
        The sweep folder (one run folder per point, ``sweep.json``).
    params, rm_kinds, **overrides
        See :func:`plan_sweep`.
    log : callable, optional
        Receives one progress line per event (default: print to stderr).

    Returns
    -------
    list of dict
        Per point: ``param``, ``value``, ``dir``, ``status`` (``"done"`` or
        ``"skipped"``), ``seconds``.

    Examples
    --------
    A tiny run (random policy and reward-model backbone) swept over two LoRA ranks:

    >>> import json, os, tempfile
    >>> from ttp_diag.gen.pipeline import run_pipeline
    >>> from ttp_diag.gen.reward_models import tiny_backbone
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "users.jsonl"), "w") as fh:
    ...     for u in range(2):
    ...         prof = [{"id": f"{u}-{i}", "text": f"story {i} by {u}", "title": f"T{i} {u}",
    ...                  "date": f"2021-01-{i + 1:02d}"} for i in range(6)]
    ...         print(json.dumps({"user_id": f"u{u}", "profile": prof}), file=fh)
    >>> cfg = RunConfig(task="lamp4", data_path=os.path.join(d, "users.jsonl"), backend="tiny",
    ...                 n=3, max_new_tokens=4, top_k_users=2, max_samples_per_user=6,
    ...                 policy="persona", progress=False, rm_backbone=tiny_backbone(),
    ...                 rm_settings={"epochs": 1, "verbose": False})
    >>> _ = run_pipeline(cfg, os.path.join(d, "run"), until="labels")
    >>> res = run_sweep(os.path.join(d, "run"), os.path.join(d, "sweep"), ["lora_rank=2,4"],
    ...                 log=lambda line: None)
    >>> [(r["dir"], r["status"]) for r in res]
    [('lora_rank=2', 'done'), ('lora_rank=4', 'done')]
    >>> [r["status"] for r in run_sweep(os.path.join(d, "run"), os.path.join(d, "sweep"),
    ...                                 ["lora_rank=2,4"], log=lambda line: None)]
    ['skipped', 'skipped']
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    parent, out = Path(parent), Path(out)
    points = plan_sweep(parent, params, rm_kinds=rm_kinds, **overrides)
    base = _parent_config(parent)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):  # one sweep process per folder (the manifest is read and rewritten)
        return _run_points(parent, out, points, base, log)


def _run_points(parent: Path, out: Path, points: list[SweepPoint], base: RunConfig,
                log) -> list[dict]:
    from ttp_diag.gen.pipeline import run_pipeline

    _write_manifest(out, parent, points)
    results = []
    t_all = time.perf_counter()
    for i, p in enumerate(points, 1):
        folder = out / p.name
        head = f"[{i}/{len(points)}] {p.name}{' (full model)' if p.is_default else ''}"
        if (folder / "scores.parquet").is_file():
            log(f"{head}: finished before, skipped")
            results.append({"param": p.param, "value": p.value, "dir": p.name,
                            "status": "skipped", "seconds": 0.0})
            continue
        log(f"{head}: training {', '.join(p.config.rm_kinds)} ...")
        t0 = time.perf_counter()
        _stage_point(parent, p, folder, base)
        run_pipeline(p.config, folder, until="scores")
        secs = time.perf_counter() - t0
        log(f"{head}: done in {secs:.1f} s (sweep {time.perf_counter() - t_all:.0f} s so far)")
        results.append({"param": p.param, "value": p.value, "dir": p.name, "status": "done",
                        "seconds": round(secs, 2)})
    return results
