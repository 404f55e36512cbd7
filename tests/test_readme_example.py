"""The README's gateway example runs as written: train the model, start the replicas, check, serve, call."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aisre.testing.server import free_port, serve_in_subprocess

ROOT = Path(__file__).resolve().parents[1]


def readme_gateway_yaml() -> str:
    section = ROOT.joinpath("README.md").read_text().split("## Serve models through the gateway", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "examples" / "train_fraud_model.py")], cwd=tmp_path, check=True)
    assert (tmp_path / "models" / "fraud-v1.joblib").exists()
    return tmp_path


def test_the_readme_gateway_example_serves_both_protocols(example_dir: Path):
    ports = {p: free_port() for p in ("9101", "9102", "9201")}
    text = readme_gateway_yaml()
    for old, new in ports.items():
        text = text.replace(f":{old}", f":{new}")
    (example_dir / "aisre.yaml").write_text(text)

    replicas = [
        serve_in_subprocess("openai", port=ports["9101"]),
        serve_in_subprocess("openai", port=ports["9102"]),
        serve_in_subprocess(
            "oip", port=ports["9201"], model="fraud", sklearn=example_dir / "models" / "fraud-v1.joblib"
        ),
    ]
    gateway = None
    try:
        check = subprocess.run(
            [sys.executable, "-m", "aisre", "check-config", "aisre.yaml"],
            cwd=example_dir,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr

        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "aisre", "serve", "-c", "aisre.yaml", "--port", str(port)],
            cwd=example_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert gateway.poll() is None, gateway.stderr.read().decode()
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)

        chat = httpx.post(
            f"{url}/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]

        row = [float(v) for v in range(1, 31)]
        for _ in range(20):  # both versions answer (90/10 split), each in the same shape
            infer = httpx.post(
                f"{url}/v2/models/fraud/infer",
                json={"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]},
            )
            assert infer.status_code == 200, infer.text
            assert infer.json()["outputs"][0]["data"][0] in (0, 1)
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        for replica in replicas:
            replica.stop()
