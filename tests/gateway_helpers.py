"""Starting real gateways for tests: uvicorn on 127.0.0.1 with the gateway's HTTP protocol, a free port, lifespan on."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from aisre.config import AisreConfig, parse_config
from aisre.gateway.app import create_app
from aisre.gateway.protocol import http_protocol


class RunningGateway:
    def __init__(self, config: AisreConfig, recorder: Any = None) -> None:
        self.config = config
        self.app = create_app(config, recorder)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                loop="uvloop",
                http=http_protocol(config.gateway),  # what `aisre serve` runs
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def gateway_config(tmp_path: Path, models: dict[str, Any], **sections: Any) -> AisreConfig:
    doc = {"store": f"sqlite:///{tmp_path / 'aisre.db'}", "models": models, **sections}
    return parse_config(yaml.safe_dump(doc))


def metric_value(gw: RunningGateway, name: str, **labels: str) -> float:
    """A sample of a real /metrics scrape, summed over the labels not given (0 when absent)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{gw.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def eventually(check: Any, timeout_s: float = 15.0) -> None:
    """Wait until `check()` is true (polling); fail after `timeout_s`, generous for a busy CI machine."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
