"""The event log: a page of it, and a live stream (server-sent events).

The stream tails the store's log by position (``pos``), so it carries every event committed to
the database, by this server or by any ``accord engine`` replica on it. Each message's SSE
``id`` is the event's position: a client that reconnects with ``Last-Event-ID`` (browsers'
``EventSource`` do this by themselves) resumes right after the last event it saw. Because
transactions may commit out of position order (docs/operations.md), the stream re-reads a
short window behind its position and drops ids it already sent.

A stream ends when the server shuts down (the app's ``stopping`` event), when the client goes
away, or after ``max_s`` seconds if the client asked for that.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from accord.central.engine import Engine
from accord.events import Event
from accord.web.accounts import User
from accord.web.api.schemas import CASE_ID_PATTERN, PROCESS_PATTERN, EventOut
from accord.web.deps import api_user, get_config, get_engine
from accord.web.problems import responses

router = APIRouter(tags=["events"], responses=responses(401, 422))
_WINDOW = 500  # positions re-read behind the cursor (late commits of lower positions)
_BATCH = 500


def _matches(e: Event, process: str | None) -> bool:
    if process is None:
        return True
    return e.process == process if "@" in process else e.process.split("@", 1)[0] == process


@router.get("/events", response_model=list[EventOut])
def list_events(
    *,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
    case: Annotated[str | None, Query(pattern=CASE_ID_PATTERN)] = None,
    process: Annotated[str | None, Query(pattern=PROCESS_PATTERN)] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events past this pos")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EventOut]:
    """A page of the event log in order; pass the last ``pos`` as ``after`` for the next."""
    out: list[EventOut] = []
    cursor = after
    while len(out) < limit:
        batch = list(engine.store.events(case, after=cursor, limit=_BATCH))
        if not batch:
            break
        for pos, e in batch:
            if _matches(e, process):
                out.append(EventOut.of(e, pos))
                if len(out) == limit:
                    break
        cursor = batch[-1][0]
    return out


def _sse(pos: int, e: Event) -> bytes:
    doc = e.to_cloudevent()
    doc["pos"] = pos
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (pos, e.type.value.encode(), orjson.dumps(doc))


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "CloudEvents JSON, one SSE message per event"}},
)  # fmt: skip
async def stream_events(
    *,
    request: Request,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
    case: Annotated[str | None, Query(pattern=CASE_ID_PATTERN)] = None,
    process: Annotated[str | None, Query(pattern=PROCESS_PATTERN)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Start past this pos (default: now)")
    ] = None,
    max_s: Annotated[
        float | None, Query(gt=0, le=86400, description="Close the stream after this long")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Every new event as it is committed (``text/event-stream``), optionally of one case or
    process. Resumes after ``Last-Event-ID`` (or ``after``); by default starts at the end."""
    config = get_config(request)
    stopping = request.app.state.stopping
    start = after
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
    if start is None:
        start = await asyncio.to_thread(_last_pos, engine)

    async def body() -> AsyncIterator[bytes]:
        cursor = start
        sent: deque[str] = deque(maxlen=4 * _WINDOW)
        seen: set[str] = set()
        deadline = None if max_s is None else time.monotonic() + max_s
        quiet_since = time.monotonic()
        yield b": accord event stream\nretry: 2000\n\n"
        while not stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            if await request.is_disconnected():
                return
            since = max(0, cursor - _WINDOW)
            batch = await asyncio.to_thread(_read, engine, case, since)
            chunks: list[bytes] = []
            for pos, e in batch:
                if e.id in seen or (pos <= start):
                    continue
                if len(sent) == sent.maxlen:
                    seen.discard(sent[0])
                sent.append(e.id)
                seen.add(e.id)
                cursor = max(cursor, pos)
                if _matches(e, process):
                    chunks.append(_sse(pos, e))
            if chunks:
                quiet_since = time.monotonic()
                yield b"".join(chunks)
                continue
            if time.monotonic() - quiet_since >= config.stream_keepalive_s:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(config.stream_poll_s)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def _read(engine: Engine, case: str | None, after: int) -> list[tuple[int, Event]]:
    return list(engine.store.events(case, after=after, limit=_WINDOW + _BATCH))


def _last_pos(engine: Engine) -> int:
    rows = engine.store.run_sql("SELECT max(pos) FROM events")
    return int(rows[0][0] or 0) if rows else 0
