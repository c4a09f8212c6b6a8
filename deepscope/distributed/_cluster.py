"""Connecting to Ray: the optional import, the address forms, and the one error type.

Ray is an optional dependency (``pip install 'deepscope[ray]'``); nothing imports it until a
distributed run starts. Addresses:

- ``"local"``: start a Ray on this machine with ``workers`` CPUs, dashboard off, shut down
  afterwards;
- ``"auto"``: the cluster named by ``RAY_ADDRESS`` or the one ``ray start`` left running;
- ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` (Ray client): that cluster's GCS / client server.

A Ray session the caller already started (``ray.init`` in a script or a test, or the driver of a
``ray job submit``) is used as it is and left running.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deepscope.errors import DeepscopeError, InputError

INSTALL_HINT = "pip install 'deepscope[ray]'"
_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")


class ClusterError(DeepscopeError):
    """Ray is missing, the cluster cannot be reached, or a shard failed on every attempt."""


def require_ray() -> Any:
    """Import Ray or raise :class:`ClusterError` saying what to install."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"Ray is not installed; {INSTALL_HINT} (Ray >= 2.9)") from None
    return ray


def check_address(address: Any) -> str:
    """Validate ``address``: ``"local"``, ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``."""
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"address must be 'local', 'auto' or HOST:PORT, got {address!r}")
    address = address.strip()
    if address in ("local", "auto") or _HOST_PORT.match(address):
        return address
    raise InputError(f"address must be 'local', 'auto', HOST:PORT or ray://HOST:PORT; got "
                     f"{address!r}")


def probe(address: str, timeout: float = 5.0) -> None:
    """Open (and close) a TCP connection to ``HOST:PORT``; :class:`ClusterError` if it fails.

    ``ray.init`` retries an unreachable GCS for a long time; this check fails in seconds.
    """
    m = _HOST_PORT.match(address)
    if m is None:
        return
    host, port = m.group("host").strip("[]"), int(m.group("port"))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({reason}); start one "
                           "with `ray start --head` and pass its address, or use --ray local"
                           ) from None


@contextmanager
def connect(address: str, workers: int) -> Iterator[Any]:
    """Yield the ``ray`` module connected to ``address``; disconnect afterwards if we connected.

    Parameters
    ----------
    address : str
        See the module docstring.
    workers : int
        CPUs of a ``"local"`` Ray (one per worker).
    """
    address = check_address(address)
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(num_cpus=workers, **options)
        else:
            probe(address)
            ray.init(address=address, **options)
    except ClusterError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r}: {first}") from None
    try:
        yield ray
    finally:
        from deepscope.distributed.runner import forget_idle_workers

        forget_idle_workers(ray)
        ray.shutdown()
