"""The work of one attempt on one account: translate the request, call MiMo, pump its stream
to the writer. One function per kind of request; each fills in the `Outcome` it is given (also
when it is cancelled half-way), raises `OpenAIError` only before the answer started (so the
exchange can fail over), and returns the `Ending` still to write once MiMo's answer is complete:
the exchange settles the account first, so that a client's next request finds it free."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ._pump import EncodedEvents, Machine, pump
from ._writer import StreamWriter
from ._beside import beside
from .accounts import Account
from .search import SearchOutcome, citations_for, web_search_call_item
from .store import Resumed, StoredResponse, StoreUnavailable, should_store
from .translate.chat import chat_request_from_chat
from .translate.chat_completion import CompletionMachine
from .translate.chat_stream import ChatStream, chat_completion_for_client
from .translate.compaction import CompactionStream, compacted_response, kept_items, summary_request
from .translate.errors import OpenAIError
from .translate.responses_request import Continuation, ResponsesTranslation, chat_request_from_responses
from .translate.responses_stream import ResponsesStream

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("mimo_asgi")
# A non-stream client of a stream that failed gets the status the failure would have had before
# the stream started (the error codes are translate/errors.py's); anything else is MiMo's fault.
_FAILED_STATUS = {"upstream_timeout": 504, "rate_limit_exceeded": 429, "insufficient_quota": 402,
                  "context_length_exceeded": 400, "content_filter": 400, "translation_error": 500}


@dataclass(slots=True)
class Job:
    """One request as a relay takes it, for one account: what the client sent (its body is
    emptied once the answer has started: nothing reads it after, and a long history is most of
    an open stream's memory), the MiMo model chosen for it, and the conversation rebuilt from
    the store (Responses with a store)."""

    kind: str  # "responses", "chat", "compaction" or "compact" (the older compaction endpoint)
    body: dict[str, Any]
    model: str
    upstream_model: str
    stream: bool
    resumed: Resumed | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    since: Continuation | None = None  # an earlier translation of the same conversation
    chained: bool = True  # stored, the answer continues the chain of previous_response_id (else starts one)
    continues: bool = False  # more of the conversation will follow: keep the translation's continuation


@dataclass(slots=True)
class Ending:
    """What is left to write once MiMo's answer is complete, one of: the stream's last bytes
    (its terminal), a whole answer, an error answer; and the id the response was stored under
    (the next turn of its chain prefers the same account)."""

    tail: bytes | None = None
    answer: Any = None
    error: OpenAIError | None = None
    stored: str | None = None

    async def write(self, writer: StreamWriter) -> None:
        if self.tail is not None:
            await writer.end(self.tail)
        elif self.error is not None:
            await writer.error(self.error)
        else:
            await writer.answer(200, self.answer)


@dataclass(slots=True)
class Outcome:
    """What an attempt came to: how it ended (a Responses status or a finish reason), MiMo's
    usage, the final Responses object when one was made, and what its translation left for the
    next request of the same conversation to continue from."""

    ended: str = ""
    usage: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    response_id: str | None = None  # a Chat completion's (a Responses object carries its own)
    conversation: list[Any] | None = None  # the whole Responses input answered, references resolved
    stored: str | None = None  # the id the response was stored under
    continuation: Continuation | None = None


async def _drive(rt: Runtime, response: Any, machine: Machine, writer: StreamWriter, account: Account, *,
                 live: bool) -> bytes:
    """The pump, with the writer's ticker beside it for a live stream."""
    run = partial(pump, response, machine, writer, secrets=(account.key,), idle_timeout=rt.upstream.timeouts.idle,
                  on_skipped=rt.metrics.skipped_line if rt.metrics is not None else None)
    return (await beside(run, writer.ticker) or b"") if live else await run()


def _full_body(job: Job) -> dict[str, Any]:
    """The client's body, its conversation so far taken from the store when it continues one."""
    if job.resumed is None:
        return job.body
    return {**job.body, "input": job.resumed.input, "previous_response_id": None}


def _responses_translation(rt: Runtime, job: Job, account: Account) -> ResponsesTranslation:
    """The MiMo request for a Responses request (in its own frame: no local keeps the client's
    body alive once the stream has started and the job has dropped it)."""
    translation = chat_request_from_responses(
        _full_body(job), upstream_model=job.upstream_model, sealer=rt.sealer,
        native_web_search=account.allows_native_web_search, drop_unsupported_tools=rt.drop_unsupported_tools,
        since=job.since, continues=job.continues,
    )
    _log_warnings(translation.warnings)
    return translation


def _log_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        logger.warning("mimo_asgi: %s", warning)


async def relay_responses(rt: Runtime, job: Job, account: Account, writer: StreamWriter, outcome: Outcome) -> Ending:
    translation = _responses_translation(rt, job, account)
    searched = await _search(rt, translation)
    stream = ResponsesStream(
        job.body, response_id=new_response_id(), model=job.model, tool_map=translation.tool_map,
        sealer=rt.sealer, include_encrypted=translation.include_encrypted, created_at=int(time.time()),
        secrets=(account.key,),
        web_search=web_search_call_item(searched, "ws_" + secrets.token_hex(24)) if searched else None,
        cite=partial(citations_for, results=searched.results) if searched and searched.results else None,
    )
    keep = job.resumed.own_items if job.resumed is not None and _stores(rt, job) else None
    if job.continues:  # kept for the connection's next turn (not held by a request no other follows)
        outcome.continuation = translation.continuation
        conversation = job.resumed.input if job.resumed is not None else job.body.get("input")
        outcome.conversation = conversation if isinstance(conversation, list) else None
    relay = _relay_events(rt, job, account, writer, outcome, translation.body, stream, keep,
                          chained=job.chained, encoded=translation.encoded)
    del translation  # the upstream body is the relay's now, which lets it go once sent
    return await relay


async def relay_compaction(rt: Runtime, job: Job, account: Account, writer: StreamWriter,
                           outcome: Outcome) -> Ending:
    """A compaction: MiMo summarises the conversation and the answer is one sealed `compaction`
    item. Stored, it starts a new chain: the user messages kept, then that item."""
    body = _full_body(job)
    translation = summary_request(body, upstream_model=job.upstream_model, sealer=rt.sealer)
    _log_warnings(translation.warnings)
    stream = CompactionStream(job.body, response_id=new_response_id(), model=job.model, sealer=rt.sealer,
                              created_at=int(time.time()), secrets=(account.key,))
    keep = kept_items(body) if _stores(rt, job) else None
    relay = _relay_events(rt, job, account, writer, outcome, translation.body, stream, keep, chained=False,
                          legacy=job.kind == "compact")
    del translation, body  # the relay lets the upstream body go once sent
    return await relay


async def _relay_events(rt: Runtime, job: Job, account: Account, writer: StreamWriter, outcome: Outcome,
                        upstream_body: dict[str, Any], stream: ResponsesStream | CompactionStream,
                        keep: list[dict[str, Any]] | None, *, chained: bool = True, legacy: bool = False,
                        encoded: bytes | None = None) -> Ending:
    """MiMo's stream as Responses events: streamed, or the final response as one JSON answer.
    `keep`: the input items to store the response with (None: not stored); `chained`: the
    stored response continues its `previous_response_id` chain; `encoded`: the body as JSON."""
    machine = EncodedEvents(stream, encode=job.stream)
    upstream = rt.upstream.post(account, upstream_body, job.extra_headers, encoded=encoded)
    del upstream_body, encoded  # the post holds them until sent, then only the request's JSON is held
    try:
        async with upstream as response:
            await writer.write(machine.start(), content=False)
            tail = await _drive(rt, response, machine, writer, account, live=job.stream)
    finally:
        outcome.usage = stream.usage
    final = outcome.response = stream.response
    outcome.ended = final.get("status", "")
    stored = None
    if keep is not None:  # before the terminal: the client's next turn may follow at once
        stored = await _store(rt, keep, account, final if chained else {**final, "previous_response_id": None})
    if job.stream:
        return Ending(tail=tail, stored=stored)
    if final.get("status") == "failed":
        error = final.get("error") or {}
        code = error.get("code")
        return Ending(error=OpenAIError(_FAILED_STATUS.get(str(code), 502), error.get("message", "MiMo failed"),
                                        type="upstream_error", code=code), stored=stored)
    return Ending(answer=compacted_response(job.body, final) if legacy else final, stored=stored)


def _stores(rt: Runtime, job: Job) -> bool:
    """Whether the answer is kept in the store (the client did not say store: false)."""
    return job.resumed is not None and rt.store is not None and should_store(job.body)


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


async def _search(rt: Runtime, translation: Any) -> SearchOutcome | None:
    """Auto web search for an account without MiMo's plugin: results go into the system message
    of `translation.body` (never a crash: a failed search becomes a note there)."""
    if translation.web_search is None or rt.web_search is None:
        return None
    if isinstance(translation, ResponsesTranslation):
        translation.encoded = None  # the body is about to change
    return await rt.web_search.augment(translation.body, translation.web_search)


async def _store(rt: Runtime, input_items: list[dict[str, Any]], account: Account,
                 final: dict[str, Any]) -> str | None:
    """Keep the response for `previous_response_id` and retrieval, with every reasoning item
    sealed (whatever the client's `include`) so a continued conversation restores it; returns
    its id, or None when the store could not take it."""
    assert rt.store is not None
    output = [_sealed(item, rt.sealer) for item in final.get("output", ())]
    record = StoredResponse.from_response({**final, "output": output}, input_items, account=account.name)
    try:
        await rt.store.put(record, rt.store_ttl)
    except StoreUnavailable:
        logger.warning("mimo_asgi: the response store is unavailable; %s was not stored", final.get("id"))
        return None
    return record.id


def _sealed(item: dict[str, Any], sealer: Any) -> dict[str, Any]:
    if item.get("type") != "reasoning" or item.get("encrypted_content"):
        return item
    text = "".join(part.get("text", "") for part in item.get("summary", ()) if isinstance(part, dict))
    return {**item, "encrypted_content": sealer.seal(text)} if text else item


async def relay_chat(rt: Runtime, job: Job, account: Account, writer: StreamWriter, outcome: Outcome) -> Ending:
    translation = chat_request_from_chat(job.body, upstream_model=job.upstream_model,
                                         native_web_search=account.allows_native_web_search)
    _log_warnings(translation.warnings)
    await _search(rt, translation)
    live = translation.body.get("stream") is True
    upstream_body = translation.body
    machine: ChatStream | CompletionMachine
    if live:
        machine = ChatStream(model=job.model, include_usage=translation.include_usage, secrets=(account.key,),
                             calls=translation.calls)
    else:  # streamed all the same, so that the idle timeout measures silence, not the whole answer
        upstream_body = {**upstream_body, "stream": True, "stream_options": {"include_usage": True}}
        machine = CompletionMachine(secrets=(account.key,))
    calls = translation.calls
    upstream = rt.upstream.post(account, upstream_body, job.extra_headers)
    del translation, upstream_body  # the post lets the body go once sent
    try:
        async with upstream as response:
            tail = await _drive(rt, response, machine, writer, account, live=live)
    finally:
        outcome.usage = machine.usage
    if isinstance(machine, ChatStream):
        outcome.ended, outcome.response_id = machine.finish_reason or "failed", machine.response_id
        return Ending(tail=tail)
    if machine.error is not None:
        outcome.ended = machine.error.code or "failed"
        return Ending(error=machine.error)
    completion = chat_completion_for_client(machine.completion(), model=job.model, secrets=(account.key,),
                                            calls=calls)
    outcome.ended, outcome.response_id = machine.finish_reason or "", completion.get("id") or None
    return Ending(answer=completion)
