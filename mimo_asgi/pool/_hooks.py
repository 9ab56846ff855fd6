"""`ResolverHooks`: a resolver's optional hooks (`report`, `remember`, `aclose`; see
`mimo_asgi.accounts.Resolver`), found once and called the same way whatever the resolver."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from ..accounts import Account, Closes, Lease, Remembers, Reports
from ..translate.errors import OpenAIError
from ._health import account_fault


async def _settled(result: Awaitable[None] | None) -> None:
    if result is not None and inspect.isawaitable(result):
        await result


def _judged(error: OpenAIError | None) -> OpenAIError | None:
    """The error to report: None when MiMo answered (the request's own error, such as a 400 or
    the content filter, says nothing against the account)."""
    return error if error is not None and account_fault(error) is not None else None


class ResolverHooks:
    """A resolver's optional hooks, found once (not per request): each method calls the hook
    when the resolver has it, awaiting it when it is async, and does nothing otherwise."""

    __slots__ = ("_report", "_remember", "_aclose")

    def __init__(self, resolver: Any) -> None:
        self._report = resolver.report if isinstance(resolver, Reports) else None
        self._remember = resolver.remember if isinstance(resolver, Remembers) else None
        self._aclose = resolver.aclose if isinstance(resolver, Closes) else None

    async def report(self, account: Account, error: OpenAIError | None) -> None:
        """Tell the resolver how an attempt on `account` went (see `finish` for `error`)."""
        if self._report is not None:
            await _settled(self._report(account, _judged(error)))

    async def remember(self, key: str, account_name: str) -> None:
        if self._remember is not None:
            await _settled(self._remember(key, account_name))

    async def aclose(self) -> None:
        if self._aclose is not None:
            await self._aclose()

    def finish(self, lease: Lease | None, account: Account, error: OpenAIError | None = None, *,
               remember: str | None = None) -> Awaitable[None] | None:
        """End one attempt on `account`, held by `lease` (None when the resolver returned a bare
        `Account`): report how it went, tie the conversation key `remember` to the account, and
        release the lease. `error`: what ended the attempt, None when MiMo answered; an error
        that is not the account's doing (`account_fault` is None) is reported as None.

        A pool's lease (`FinishingLease`) does it all in one step: for a `SharedAccountPool`
        one Redis round trip, for an `AccountPool` none. Other leases get `report`, `remember`
        and `release()` in turn. Returns what is still in progress (await it, shielded and
        bounded, as a release's result), or None when all is done. Never call `release()`
        after it (it is a no-op on the pools' leases, a second release on others)."""
        error = _judged(error)
        finish = getattr(lease, "finish", None)
        if finish is not None:
            return finish(error, remember=remember)  # type: ignore[no-any-return]
        if self._report is None and not (remember and self._remember is not None):
            return lease.release() if lease is not None else None
        return self._in_turn(lease, account, error, remember)

    async def _in_turn(self, lease: Lease | None, account: Account, error: OpenAIError | None,
                       remember: str | None) -> None:
        try:
            if self._report is not None:
                await _settled(self._report(account, error))
            if remember:
                await self.remember(remember, account.name)
        finally:
            if lease is not None:
                await _settled(lease.release())
