"""Clients that leave before their answer: the upstream work is cancelled, the call is recorded
as `cancelled` and counted under status_class 499, on both protocols. Real gateway (uvicorn),
real mock replicas, real sockets; the client is a real HTTP client that hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import openai
import pytest

import aisre
from aisre.errors import ClientDisconnected
from aisre.gateway.disconnect import cancel_on_disconnect
from aisre.testing.oip_server import oip_app
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, eventually, gateway_config, metric_value

MESSAGES = [{"role": "user", "content": "hello there"}]
PATIENCE = httpx.Timeout(10, read=0.5)  # the client gives up after half a second without an answer


@pytest.fixture
def replica():
    server = serve_in_thread(openai_app(MockSettings(completion_tokens=12)))
    yield server
    server.stop()


@pytest.fixture
def gw(tmp_path: Path, replica):
    models = {
        "chat": {"protocol": "openai", "log_content": True, "versions": {"v1": {"replicas": [f"{replica.url}/v1"]}}}
    }
    with RunningGateway(gateway_config(tmp_path, models)) as running:
        yield running


def _settings(server, **values) -> None:
    httpx.post(f"{server.url}/_mock/settings", json=values).raise_for_status()


def _records(gw: RunningGateway) -> list[aisre.InferenceRecord]:
    gw.gateway.recorder.flush()
    return gw.gateway.recorder.store.records()


def _in_flight_upstream(server) -> int:
    return httpx.get(f"{server.url}/_mock/stats").json()["in_flight"]


def _counted(gw: RunningGateway, model: str, status_class: str) -> float:
    return metric_value(gw, "aisre_gateway_requests_total", model=model, status_class=status_class)


def test_a_client_leaving_mid_stream_is_recorded_as_cancelled_and_counted_as_499(gw, replica):
    _settings(replica, tokens_per_s=20, completion_tokens=400)  # a 20 s answer
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    for _, chunk in zip(range(3), stream, strict=False):
        assert chunk.choices
    stream.close()  # the client hangs up
    eventually(lambda: len(_records(gw)) == 1)
    (record,) = _records(gw)
    assert record.status == "cancelled" and "client closed the stream" in record.error
    assert record.output_text and record.output_text.startswith("mock")
    assert _counted(gw, "chat", "499") == 1 and _counted(gw, "chat", "2xx") == 0
    assert metric_value(gw, "aisre_predictions_total", model="chat") == 1
    assert metric_value(gw, "aisre_inference_errors_total", model="chat") == 0  # cancelled is not an error
    # The gateway hung up on the upstream too: the replica stops generating for nobody.
    eventually(lambda: _in_flight_upstream(replica) == 0)
    assert gw.gateway.versions[("chat", "v1")].balancer.replicas[0].outstanding == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole-response", "stream-before-first-byte"])
def test_a_client_leaving_while_the_upstream_works_cancels_the_call(gw, replica, stream: bool):
    _settings(replica, hang=True)
    body = {"model": "chat", "messages": MESSAGES, "stream": stream}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=PATIENCE)
    eventually(lambda: len(_records(gw)) == 1)
    (record,) = _records(gw)
    assert record.status == "cancelled" and "client closed its connection" in record.error
    assert _counted(gw, "chat", "499") == 1 and _counted(gw, "chat", "5xx") == 0
    eventually(lambda: _in_flight_upstream(replica) == 0)
    assert gw.gateway.versions[("chat", "v1")].balancer.replicas[0].outstanding == 0
    _settings(replica, hang=False)
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=body).status_code == 200  # and it keeps serving


def test_an_oip_client_leaving_cancels_the_call_and_every_row_is_recorded_cancelled(tmp_path: Path):
    upstream = serve_in_thread(oip_app(MockSettings(model="fraud", hang=True)))
    try:
        models = {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": [upstream.url]}}}}
        with RunningGateway(gateway_config(tmp_path, models)) as gw:
            body = {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]}]}
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{gw.url}/v2/models/fraud/infer", json=body, timeout=PATIENCE)
            eventually(lambda: len(_records(gw)) == 3)
            assert {(r.status, r.error) for r in _records(gw)} == {
                ("cancelled", "the client closed its connection before the answer")
            }
            assert _counted(gw, "fraud", "499") == 1
            eventually(lambda: _in_flight_upstream(upstream) == 0)
            _settings(upstream, hang=False)
            assert httpx.post(f"{gw.url}/v2/models/fraud/infer", json=body).status_code == 200
    finally:
        upstream.stop()


# -- the watch itself (asyncio, a fake ASGI receive) ----------------------------------------------


class _Client:
    """An ASGI `receive` whose client leaves when `leave()` is called; counts the calls."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.calls = 0

    async def receive(self) -> dict:
        self.calls += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}


def test_the_watch_cancels_the_work_when_the_client_leaves_and_only_then():
    async def scenario() -> None:
        client, cleaned_up = _Client(), []

        async def slow() -> str:
            try:
                await asyncio.sleep(30)
                return "late"
            finally:
                cleaned_up.append(True)

        asyncio.get_running_loop().call_later(0.1, client.gone.set)
        with pytest.raises(ClientDisconnected, match="before the answer"):
            await cancel_on_disconnect(client.receive, slow())
        assert cleaned_up == [True] and asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0.01)  # the task itself is not left cancelled

        patient = _Client()
        assert await cancel_on_disconnect(patient.receive, asyncio.sleep(0.1, "on time")) == "on time"
        patient.gone.set()  # leaving after the answer cancels nothing
        await asyncio.sleep(0.05)
        assert patient.calls == 1

        quick = _Client()
        assert await cancel_on_disconnect(quick.receive, asyncio.sleep(0, "fast")) == "fast"
        assert quick.calls == 0  # answered before the watch starts: no listener at all

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_passes_through_the_watch():
    async def scenario() -> None:
        client = _Client()
        work = asyncio.ensure_future(cancel_on_disconnect(client.receive, asyncio.sleep(30)))
        await asyncio.sleep(0.1)
        work.cancel()  # a server shutting down, say
        with pytest.raises(asyncio.CancelledError):
            await work

    asyncio.run(scenario())
