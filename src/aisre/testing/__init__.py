"""Honest model servers for tests and benchmarks: an OpenAI-compatible mock and an Open Inference Protocol v2 mock."""

from aisre.gateway.oip_tensors import TensorError, decode_inputs, decode_outputs, encode_inputs, encode_outputs
from aisre.testing.oip_model import OipModel
from aisre.testing.oip_server import oip_app
from aisre.testing.openai_server import openai_app
from aisre.testing.server import RunningProcess, RunningServer, free_port, serve_in_subprocess, serve_in_thread
from aisre.testing.settings import MockSettings

__all__ = [
    "MockSettings",
    "OipModel",
    "RunningProcess",
    "RunningServer",
    "TensorError",
    "decode_inputs",
    "decode_outputs",
    "encode_inputs",
    "encode_outputs",
    "free_port",
    "oip_app",
    "openai_app",
    "serve_in_subprocess",
    "serve_in_thread",
]
