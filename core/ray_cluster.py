"""Joining a Ray cluster, once per process, for every package that runs on one.

Reward hosts (`rewards.ray_hosts`), distributed embedding (`rag.ray_embed`) and eval
generation (`eval.ray_generation`) all join the same way: the address given, else
$RAY_ADDRESS, else a local Ray started here. A missing Ray or an unreachable address is a
one-line user error.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from core.errors import UserError


class RayUnavailableError(UserError, RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


def init_ray(address: str | None = None, *, object_store_mb: int | None = None, num_cpus: int | None = None):
    """Join (or start) Ray once per process and return the `ray` module."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("--ray needs Ray: pip install 'assay[ray]' (or: pip install 'ray[data]')") from None
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"namespace": "assay", "logging_level": logging.WARNING, "log_to_driver": True}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "local"):
        kwargs["include_dashboard"] = False
        if object_store_mb:
            kwargs["object_store_memory"] = int(object_store_mb) << 20
        if num_cpus:
            kwargs["num_cpus"] = int(num_cpus)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot join the Ray cluster at {address or 'auto'}: "
                                  f"{str(exc).splitlines()[0][:200]}") from None
    return ray
