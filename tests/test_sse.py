"""The SSE wire format of OpenAI streams: events split right however the bytes arrive, garbage
told apart from events, and the error event clients raise on."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aisre.errors import ResponseTooLarge
from aisre.gateway.sse import SseEvents, error_event, read_event, upstream_error

STREAM = (
    b'data: {"choices": [{"delta": {"content": "Hel"}}]}\r\n\r\n'
    b": keep-alive comment\n\n"
    b'event: message\nid: 7\ndata: {"choices": [{"delta": {"content": "lo"}}]}\n\n'
    b"\n\n"  # stray blank lines are no event
    b"data: [DONE]"  # the last event without its blank line
)
EVENTS = [
    b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n',
    b": keep-alive comment\n\n",
    b'event: message\nid: 7\ndata: {"choices": [{"delta": {"content": "lo"}}]}\n\n',
    b"data: [DONE]\n\n",
]


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in zip(points, points[1:], strict=False)]


async def _collect(chunks: list[bytes]) -> list[bytes]:
    async def source():
        for chunk in chunks:
            yield chunk

    return [event async for event in SseEvents(source())]


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_events_are_the_same_however_the_bytes_are_chunked(cuts: list[int]):
    chunks = _split(STREAM, cuts)  # CRLF included: a cut may fall between \r and \n
    assert asyncio.run(_collect(chunks)) == EVENTS


def test_crlf_line_ends_are_normalised_within_a_chunk():
    assert asyncio.run(_collect([STREAM])) == EVENTS


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: " + b"x" * 200 + b"\n\n"],  # a complete event over the limit
        [b'data: {"ok": 1}\n\n', b"data: "] + [b"x" * 50] * 10,  # one that never ends, in pieces
    ],
    ids=["complete", "unending"],
)
def test_an_event_over_the_limit_is_refused_and_not_buffered_further(chunks: list[bytes]):
    async def read() -> list[bytes]:
        async def source():
            for chunk in chunks:
                yield chunk

        events = SseEvents(source(), max_event_bytes=100)
        seen = []
        with pytest.raises(ResponseTooLarge, match="a server-sent event over 100 bytes"):
            async for event in events:
                seen.append(event)
        return seen

    seen = asyncio.run(read())
    assert seen in ([], [b'data: {"ok": 1}\n\n'])  # events before the large one still came through


def test_events_up_to_the_limit_pass():
    event = b"data: " + b"x" * 94 + b"\n\n"  # 100 bytes before its blank line
    assert asyncio.run(_collect_limited([event[:50], event[50:]], 100)) == [event]
    assert asyncio.run(_collect_limited([event[:-1], event[-1:]], 100)) == [event]  # cut inside the blank line


async def _collect_limited(chunks: list[bytes], limit: int) -> list[bytes]:
    async def source():
        for chunk in chunks:
            yield chunk

    return [event async for event in SseEvents(source(), max_event_bytes=limit)]


def test_well_formed_events_are_read_and_done_is_noticed():
    parsed = [read_event(e) for e in EVENTS]
    assert all(p.problem is None for p in parsed)
    assert parsed[0].objects == [{"choices": [{"delta": {"content": "Hel"}}]}]
    assert parsed[1].objects == [] and not parsed[1].done
    assert parsed[3].done and parsed[3].objects == []


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (b"<html><body>502 Bad Gateway</body></html>\n\n", "a line that is not server-sent events: '<html>"),
        (b"data: {not json\n\n", "a data line that is not JSON: '{not json'"),
        (b"data: [1, 2]\n\n", "a data line that is not a JSON object: '[1, 2]'"),
        (b'data: {"ok": 1}\nHTTP/1.1 200 OK\n\n', "a line that is not server-sent events: 'HTTP/1.1 200 OK'"),
    ],
)
def test_garbage_is_named_with_what_was_wrong(event: bytes, problem: str):
    parsed = read_event(event)
    assert parsed.problem is not None and parsed.problem.startswith(problem)


def test_the_error_event_is_openai_s_error_object():
    event = error_event("upstream broke off; the answer is incomplete", "upstream_error", "upstream_stream_broken")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    body = json.loads(event[6:])
    assert body == {
        "error": {
            "message": "upstream broke off; the answer is incomplete",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_stream_broken",
        }
    }
    assert upstream_error(body) == "upstream broke off; the answer is incomplete"
    assert upstream_error({"choices": []}) is None and upstream_error({"error": None}) is None
