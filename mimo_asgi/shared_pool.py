"""Moved to `mimo_asgi.pool`; this module keeps the old import path working."""

from .pool import SharedAccountPool, SharedLease, cooldown_seconds
from .translate.errors import store_unavailable

__all__ = ["SharedAccountPool", "SharedLease", "cooldown_seconds", "store_unavailable"]
