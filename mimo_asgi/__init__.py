"""Serve OpenAI Responses and Chat Completions clients from Xiaomi MiMo, as a raw ASGI middleware."""

from ._middleware import MimoMiddleware
from ._runtime import Limits
from ._accounting import UsageEvent
from ._seal import ReasoningSealer
from ._upstream import Timeouts
from .accounts import Account, Lease, Resolver, RouteRequest, Secret
from .pool import AccountPool, PoolLease, SharedAccountPool, SharedLease
from .translate.errors import OpenAIError

__all__ = [
    "Account",
    "AccountPool",
    "Lease",
    "Limits",
    "MimoMiddleware",
    "OpenAIError",
    "PoolLease",
    "ReasoningSealer",
    "Resolver",
    "RouteRequest",
    "Secret",
    "SharedAccountPool",
    "SharedLease",
    "Timeouts",
    "UsageEvent",
]
__version__ = "0.1.0"
