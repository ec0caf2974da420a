"""Ray, imported lazily: one clear error when it is missing or unreachable, one session object.

Used by the analysis layer (:func:`ttp_diag.bon_curve_dataset` with ``engine="ray"``) and by the
generation pipeline (:mod:`ttp_diag.gen.ray_engine`). ``import ttp_diag`` never imports Ray;
only the functions here do, when an engine ``"ray"`` is asked for.

A :class:`RaySession` joins the Ray that is already running in this process, or connects to
``address``, or (no address) starts a local Ray for its lifetime and shuts it down on
:meth:`~RaySession.close`. An address that does not answer is refused within seconds with an
:class:`~ttp_diag.exceptions.EngineError` naming it, instead of Ray's long connection retries.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import socket

from .exceptions import EngineError

__all__ = ["import_ray", "RaySession", "RAY_INSTALL_HINT", "check_address"]

RAY_INSTALL_HINT = "pip install 'ttp-diag[ray]'"

# A local Ray for one run or one analysis: a small object store (the machine is shared).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


def import_ray():
    """``import ray`` (with Ray Data), or an :class:`EngineError` naming the extra to install.

    Examples
    --------
    >>> try:
    ...     ray = import_ray()
    ... except EngineError as exc:
    ...     assert "ttp-diag[ray]" in str(exc)
    """
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is part of the ray[data] extra)
    except ImportError as exc:
        raise EngineError(
            f"engine='ray' needs Ray Data, which is not installed ({exc}); install it with "
            f"{RAY_INSTALL_HINT}, or use engine='local' (the default)"
        ) from exc
    return ray


def check_address(address: str | None, *, timeout_s: float = 5.0) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) address that does not accept a connection.

    ``None``, ``"local"`` and ``"auto"`` pass (Ray itself says whether ``"auto"`` finds a
    cluster).

    Examples
    --------
    >>> check_address(None)
    >>> check_address("127.0.0.1:1", timeout_s=1)
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.EngineError: Ray address '127.0.0.1:1' is unreachable (...
    """
    if address in (None, "", "local", "auto"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise EngineError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.1:6379 or "
            "ray://10.0.0.1:10001); pass the address `ray start --head` printed, or leave "
            "the address out for a local Ray"
        )
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise EngineError(
            f"Ray address {address!r} is unreachable ({exc.__class__.__name__}: {exc}); start "
            "the cluster (`ray start --head` on its head node) and pass the address it prints, "
            "or leave the address out to start a local Ray for this run"
        ) from None


class RaySession:
    """Ray for one run: joined if running, connected to ``address``, or started locally.

    Parameters
    ----------
    address : str, optional
        A running cluster (``host:port``, ``ray://host:port`` or ``"auto"``). ``None``: the
        Ray already initialised in this process, else a local Ray started here.
    workers : int, optional
        Workers (actors or tasks) per stage; default: the cluster's CPUs.
    num_cpus : int, optional
        CPUs of a local Ray started here (default: all of this machine's).

    Attributes
    ----------
    owned : bool
        Whether this session started Ray (and :meth:`close` shuts it down).
    startup_seconds : float
        Time taken to start or join Ray.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 num_cpus: int | None = None):
        import time

        if workers is not None:
            try:
                ok = not isinstance(workers, bool) and operator.index(workers) >= 1
            except TypeError:
                ok = False
            if not ok:
                raise EngineError(f"workers must be a whole number >= 1 (Ray workers at once); "
                                  f"got {workers!r}")
        ray = import_ray()
        t0 = time.perf_counter()
        self.owned = False
        check_address(address)
        if not ray.is_initialized():
            kw: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
            if address in (None, "", "local"):
                kw.update(num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
            else:
                kw["address"] = address
            for attempt in (1, 2):
                try:
                    ray.init(**kw)
                    break
                except ConnectionError as exc:
                    raise EngineError(
                        f"could not connect to Ray at {address!r} ({exc}); start the cluster "
                        "(`ray start --head`) or leave the address out for a local Ray"
                    ) from None
                except Exception as exc:  # Ray raises a bare Exception when startup times out
                    if "timed out during startup" not in str(exc):
                        raise
                    with contextlib.suppress(Exception):
                        ray.shutdown()
                    if attempt == 2:
                        raise EngineError(
                            f"Ray did not start in time, twice ({exc}); the machine is probably "
                            "overloaded: retry later, or start Ray yourself (`ray start --head`) "
                            "and pass its address"
                        ) from None
            self.owned = True
        self.startup_seconds = time.perf_counter() - t0
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # one tqdm line per stage is ours
        ctx.print_on_execution_start = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = int(workers) if workers is not None else max(1, cpus)
        self.ray = ray

    def close(self) -> None:
        """Shut Ray down if this session started it."""
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
