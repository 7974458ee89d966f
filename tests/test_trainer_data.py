"""Chat-template tokenization with an agent-only loss mask, per-turn splitting, and packing.

Tokenizers are byte-level BPEs trained here on the test rows, the model a tiny Qwen3 from a
config; nothing is downloaded. Expected agent text is written out by hand per template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from agentscaler.pipeline.export import ExportConfig, export_sft
from agentscaler.runtime import Environment, ErrorInjection, GoldAgent, ScriptedUser, Session, Task
from agentscaler.trainer.chat_templates import CHATML_TOOLS, LLAMA31_STYLE, QWEN3_STYLE
from agentscaler.trainer.data import (
    IGNORE_INDEX,
    DataConfig,
    Sample,
    block_causal_mask,
    collate,
    load_samples,
    pack,
    parse_row,
    train_tokenizer,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order by its id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel_order",
            "description": "Cancel an order that has not shipped.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}, "reason": {"type": "string"}},
                "required": ["order_id", "reason"],
            },
        },
    },
]
SYSTEM = {"role": "system", "content": "You are the bookstore's support agent."}


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _result(name: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "content": content, "tool_call_id": f"call_{name}", "name": name}


ORDER = [
    SYSTEM,
    {"role": "user", "content": "Where is my order 17?"},
    {"role": "assistant", "content": "", "tool_calls": [_call("get_order", order_id=17)]},
    _result("get_order", '{"order_id": 17, "status": "shipped", "shipped_on": "2024-05-02"}'),
    {"role": "assistant", "content": "Order 17 shipped on 2024-05-02."},
]
CANCEL = [
    SYSTEM,
    {"role": "user", "content": "Please cancel order 18, I ordered it twice."},
    {
        "role": "assistant",
        "content": "Let me look at order 18 first.",
        "tool_calls": [_call("get_order", order_id=18)],
    },
    _result("get_order", '{"order_id": 18, "status": "pending"}'),
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [_call("cancel_order", order_id=18, reason="ordered twice")],
    },
    _result("cancel_order", '{"order_id": 18, "status": "cancelled"}'),
    {"role": "assistant", "content": "Order 18 is cancelled."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You're welcome."},
]
THINKING = [
    SYSTEM,
    {"role": "user", "content": "Where is my order 17?"},
    {
        "role": "assistant",
        "content": "<think>\nThe customer wants order 17's status.\n</think>",
        "tool_calls": [_call("get_order", order_id=17)],
    },
    _result("get_order", '{"order_id": 17, "status": "shipped"}'),
    {"role": "assistant", "content": "<think>\nIt shipped.\n</think>\nOrder 17 has shipped."},
    {"role": "user", "content": "Then cancel order 18."},
    {
        "role": "assistant",
        "content": "<think>\nCancel 18 as asked.\n</think>",
        "tool_calls": [_call("cancel_order", order_id=18, reason="customer asked")],
    },
    _result("cancel_order", '{"order_id": 18, "status": "cancelled"}'),
    {"role": "assistant", "content": "Order 18 is cancelled."},
]

# What the agent writes in ORDER and CANCEL, as each template renders it, end of turn included.
CHATML_AGENT = {
    "order": '<tool_call>\n{"name": "get_order", "arguments": {"order_id": 17}}\n</tool_call><|im_end|>'
    "Order 17 shipped on 2024-05-02.<|im_end|>",
    "cancel": 'Let me look at order 18 first.\n<tool_call>\n{"name": "get_order", "arguments": {"order_id": 18}}\n</tool_call><|im_end|>'
    '<tool_call>\n{"name": "cancel_order", "arguments": {"order_id": 18, "reason": "ordered twice"}}\n</tool_call><|im_end|>'
    "Order 18 is cancelled.<|im_end|>"
    "You're welcome.<|im_end|>",
}
LLAMA_AGENT = {
    "order": '{"name": "get_order", "parameters": {"order_id": 17}}<|eot_id|>'
    "Order 17 shipped on 2024-05-02.<|eot_id|>",
    "cancel": 'Let me look at order 18 first.\n{"name": "get_order", "parameters": {"order_id": 18}}<|eot_id|>'
    '{"name": "cancel_order", "parameters": {"order_id": 18, "reason": "ordered twice"}}<|eot_id|>'
    "Order 18 is cancelled.<|eot_id|>"
    "You're welcome.<|eot_id|>",
}


def _row(messages: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    """A row as pipeline.export writes it: tools and arguments as JSON strings."""
    stored = [
        {
            **m,
            "tool_calls": [
                {
                    **c,
                    "function": {
                        **c["function"],
                        "arguments": json.dumps(c["function"]["arguments"]),
                    },
                }
                for c in m["tool_calls"]
            ],
        }
        if "tool_calls" in m
        else m
        for m in messages
    ]
    return {
        "messages": stored,
        "tools": json.dumps(TOOLS),
        "task_id": task_id,
        "trial": 0,
        "domain": "bookstore",
        "stage": "general",
    }


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _dataset(tmp_path: Path, **conversations: list[dict[str, Any]]) -> Path:
    rows = [json.dumps(_row(m, name)) for name, m in conversations.items()]
    return _write(tmp_path / "train.jsonl", rows)


def _chatml_tokenizer(template: str) -> PreTrainedTokenizerFast:
    rows = [_row(m, str(k)) for k, m in enumerate([ORDER, CANCEL, THINKING])]
    return train_tokenizer(
        [parse_row(json.dumps(r), "rows", k) for k, r in enumerate(rows, 1)],
        vocab_size=600,
        chat_template=template,
    )


def _llama_tokenizer() -> PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    texts = [json.dumps(m) for m in [*ORDER, *CANCEL]]
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|eot_id|>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = LLAMA31_STYLE
    return tokenizer


def _supervised(tokenizer: PreTrainedTokenizerBase, sample: Sample) -> str:
    return tokenizer.decode(
        [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
    )


@pytest.mark.parametrize(
    ("template", "use_markers", "agent"),
    [
        pytest.param(QWEN3_STYLE, True, CHATML_AGENT, id="qwen3-style-incremental"),
        pytest.param(LLAMA31_STYLE, True, LLAMA_AGENT, id="llama31-style-incremental"),
        pytest.param(CHATML_TOOLS, True, CHATML_AGENT, id="chatml-generation-markers"),
        pytest.param(CHATML_TOOLS, False, CHATML_AGENT, id="chatml-incremental"),
    ],
)
def test_the_loss_mask_covers_exactly_what_the_agent_writes(
    tmp_path: Path, template: str, use_markers: bool, agent: dict[str, str]
) -> None:
    """Decoded, the supervised tokens are the agent's text and calls with each end-of-turn token,
    nothing of the system, user or tool turns; each conversation is one whole sample."""
    tokenizer = _llama_tokenizer() if template == LLAMA31_STYLE else _chatml_tokenizer(template)
    path = _dataset(tmp_path, order=ORDER, cancel=CANCEL)
    samples, report = load_samples([path], tokenizer, DataConfig(use_markers=use_markers))
    assert report.rows_read == report.samples == 2 and report.rows_split == 0
    assert [s.turn for s in samples] == [None, None]
    assert [_supervised(tokenizer, s) for s in samples] == [agent["order"], agent["cancel"]]
    assert report.supervised_tokens == sum(sum(s.loss_mask) for s in samples)


def test_generation_markers_and_incremental_rendering_give_the_same_mask(tmp_path: Path) -> None:
    """On the marker template, the template's own mask and the one found by rendering prefixes
    agree token for token."""
    tokenizer = _chatml_tokenizer(CHATML_TOOLS)
    path = _dataset(tmp_path, order=ORDER, cancel=CANCEL)
    by_markers, _ = load_samples([path], tokenizer, DataConfig(use_markers=True))
    by_rendering, _ = load_samples([path], tokenizer, DataConfig(use_markers=False))
    assert [s.input_ids for s in by_markers] == [s.input_ids for s in by_rendering]
    assert [s.loss_mask for s in by_markers] == [s.loss_mask for s in by_rendering]


def test_reasoning_dropped_from_earlier_turns_splits_the_row_per_turn(tmp_path: Path) -> None:
    """A Qwen3-style template hides earlier reasoning in the full rendering, so that row becomes
    one sample per assistant turn: the exact generation-time context, then only that turn."""
    tokenizer = _chatml_tokenizer(QWEN3_STYLE)
    path = _dataset(tmp_path, order=ORDER, thinking=THINKING)
    samples, report = load_samples([path], tokenizer, DataConfig())
    assert report.rows_split == 1 and [s.turn for s in samples] == [None, 2, 4, 6, 8]
    turns = {
        2: '<think>\nThe customer wants order 17\'s status.\n</think>\n<tool_call>\n{"name": "get_order", "arguments": {"order_id": 17}}\n</tool_call><|im_end|>',
        4: "<think>\nIt shipped.\n</think>\nOrder 17 has shipped.<|im_end|>",
        6: '<think>\nCancel 18 as asked.\n</think>\n<tool_call>\n{"name": "cancel_order", "arguments": {"order_id": 18, "reason": "customer asked"}}\n</tool_call><|im_end|>',
        8: "Order 18 is cancelled.<|im_end|>",
    }
    for sample in samples[1:]:
        assert sample.turn is not None
        context = tokenizer.apply_chat_template(
            THINKING[: sample.turn], tools=TOOLS, add_generation_prompt=True, tokenize=False
        )
        start = sample.loss_mask.index(1)
        assert set(sample.loss_mask[start:]) == {1}  # context first, then the one turn
        assert tokenizer.decode(sample.input_ids[:start]) == context
        assert _supervised(tokenizer, sample) == turns[sample.turn]
    contexts = {s.turn: tokenizer.decode(s.input_ids[: s.loss_mask.index(1)]) for s in samples[1:]}
    assert "The customer wants" in contexts[4] and "It shipped" not in contexts[4]
    assert "The customer wants" not in contexts[6] and "It shipped" not in contexts[8]
    assert "Order 17 has shipped." in contexts[8]  # the answer stays, only the reasoning goes


def test_split_turns_supervises_each_turn_once_with_the_same_text(tmp_path: Path) -> None:
    """`split_turns=True` splits a prefix-preserving row too; its turns add up to the whole
    conversation's supervised text."""
    tokenizer = _chatml_tokenizer(CHATML_TOOLS)
    path = _dataset(tmp_path, cancel=CANCEL)
    split, report = load_samples([path], tokenizer, DataConfig(split_turns=True))
    assert report.rows_split == 1 and [s.turn for s in split] == [2, 4, 6, 8]
    assert "".join(_supervised(tokenizer, s) for s in split) == CHATML_AGENT["cancel"]


def test_samples_over_max_length_are_dropped_and_counted(tmp_path: Path) -> None:
    """Too-long samples are left out whole, never truncated, and the report counts them."""
    tokenizer = _chatml_tokenizer(QWEN3_STYLE)
    path = _dataset(tmp_path, order=ORDER, cancel=CANCEL, thinking=THINKING)
    everything, _ = load_samples([path], tokenizer, DataConfig())
    limit = sorted(len(s.input_ids) for s in everything)[2]
    kept, report = load_samples([path], tokenizer, DataConfig(max_length=limit))
    too_long = [s for s in everything if len(s.input_ids) > limit]
    assert too_long and report.dropped_too_long == len(too_long)
    assert kept == [s for s in everything if len(s.input_ids) <= limit]
    assert report.samples == len(everything) - len(too_long) and report.problems == []


def test_bad_rows_are_reported_by_file_line_and_field_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    """Not JSON, unparsable arguments, a call without a name, tools that are not a list and a
    row without an assistant turn are each named `path:line: field` and skipped."""
    good = _row(ORDER, "good")
    bad_arguments = json.loads(json.dumps(good))
    bad_arguments["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"order_id": 17'
    no_name = json.loads(json.dumps(good))
    del no_name["messages"][2]["tool_calls"][0]["function"]["name"]
    path = _write(
        tmp_path / "train.jsonl",
        [
            json.dumps(good),
            '{"messages": [',
            json.dumps(bad_arguments),
            json.dumps(no_name),
            json.dumps({**good, "tools": json.dumps({"get_order": {}})}),
            json.dumps(_row(ORDER[:2], "unanswered")),
            json.dumps(good),
        ],
    )
    samples, report = load_samples([path], _chatml_tokenizer(CHATML_TOOLS), DataConfig())
    assert report.rows_read == 7 and report.samples == len(samples) == 2
    assert report.bad_rows == 4 and report.dropped_no_assistant == 1
    assert [s.line for s in samples] == [1, 7]
    where = [str(p).split(": ", 2)[:2] for p in report.problems]
    assert where == [
        [f"{path}:2", "row"],
        [f"{path}:3", "messages.2.tool_calls.0.function.arguments"],
        [f"{path}:4", "messages.2.tool_calls.0.function.name"],
        [f"{path}:5", "tools"],
        [f"{path}:6", "messages"],
    ]
    assert "not valid JSON" in report.problems[1].reason
    assert report.problems[4].reason == "no assistant turn"


def test_the_trained_tokenizer_round_trips_and_keeps_chatml_tokens_whole() -> None:
    """The offline tokenizer reads back what it encodes, has single ChatML control tokens, eos
    and padding set, and the marker template as its chat template."""
    tokenizer = _chatml_tokenizer(CHATML_TOOLS)
    assert tokenizer.chat_template == CHATML_TOOLS and len(tokenizer) <= 600
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = tokenizer.apply_chat_template(CANCEL, tools=TOOLS, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(start) == text.count("<|im_start|>")
    assert ids.count(tokenizer.eos_token_id) == text.count("<|im_end|>")


def _packable(tmp_path: Path) -> tuple[PreTrainedTokenizerFast, list[Sample]]:
    tokenizer = _chatml_tokenizer(QWEN3_STYLE)
    path = _dataset(tmp_path, order=ORDER, cancel=CANCEL, thinking=THINKING)
    samples, _ = load_samples([path], tokenizer, DataConfig(split_turns=True))
    return tokenizer, samples


def test_packing_restarts_positions_and_keeps_labels_inside_samples(tmp_path: Path) -> None:
    """Every sample lies whole in one row with positions 0..n-1; labels are its supervised
    tokens, never a sample's first token nor padding; a row's length counts its samples' tokens;
    packing twice gives the same rows."""
    _, samples = _packable(tmp_path)
    max_length = 2 * max(len(s.input_ids) for s in samples)
    rows = pack(samples, max_length, pad_id=0)
    assert rows == pack(samples, max_length, pad_id=0) and len(rows) < len(samples)
    assert all(len(r.input_ids) == len(r.labels) == len(r.position_ids) == max_length for r in rows)
    assert sum(r.length for r in rows) == sum(len(s.input_ids) for s in samples)
    found = 0
    for row in rows:
        assert set(row.input_ids[row.length :]) <= {0}  # only padding after the samples
        starts = [k for k, p in enumerate(row.position_ids) if p == 0]
        for begin, end in zip(starts, [*starts[1:], max_length], strict=True):
            assert row.position_ids[begin:end] == list(range(end - begin))
            assert row.labels[begin] == IGNORE_INDEX
            piece = row.input_ids[begin:end]
            match = [s for s in samples if s.input_ids == piece]
            if not match:  # the padding tail
                assert set(row.labels[begin:end]) == {IGNORE_INDEX}
                continue
            found += 1
            expected = [
                t if m else IGNORE_INDEX for t, m in zip(piece, match[0].loss_mask, strict=True)
            ]
            assert row.labels[begin + 1 : end] == expected[1:]
    assert found == len(samples)
    with pytest.raises(ValueError, match="over max_length"):
        pack(samples, max_length=10)


def test_the_attention_mask_is_block_diagonal_causal() -> None:
    """Each token sees itself and the earlier tokens of its own sample, nothing else."""
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    allowed = torch.block_diag(*(torch.ones(n, n).tril() for n in (3, 2, 4))).bool()
    mask = block_causal_mask(position_ids)
    assert mask.shape == (1, 1, 9, 9)
    assert torch.equal(mask[0, 0] == 0, allowed)
    assert (mask[0, 0][~allowed] == torch.finfo(torch.float32).min).all()


def test_a_packed_sample_gets_the_same_logits_as_alone(tmp_path: Path) -> None:
    """With packed position ids and the block mask, a tiny Qwen3 (eager, fp32) computes every
    sample's logits as if it were alone in the batch."""
    tokenizer, samples = _packable(tmp_path)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=1024,
        attn_implementation="eager",
    )
    model = Qwen3ForCausalLM(config).eval()
    rows = pack(samples, 2 * max(len(s.input_ids) for s in samples), pad_id=0)
    row = max(rows, key=lambda r: r.position_ids.count(0))
    batch = collate([row])
    with torch.no_grad():
        packed = model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            attention_mask=batch.attention_mask(),
        ).logits[0]
        starts = [k for k, p in enumerate(row.position_ids) if p == 0]
        checked = 0
        for begin, end in zip(starts, [*starts[1:], len(row.input_ids)], strict=True):
            if not any(s.input_ids == row.input_ids[begin:end] for s in samples):
                continue  # padding
            alone = model(input_ids=torch.tensor([row.input_ids[begin:end]])).logits[0]
            torch.testing.assert_close(packed[begin:end], alone, atol=1e-4, rtol=0)
            checked += 1
    assert checked >= 2


@pytest.mark.anyio
async def test_exported_trajectories_become_whole_conversation_samples(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """pipeline.export's rows of real bookstore sessions load as one sample each, with every
    tool call supervised and the user's words left as context."""
    kinds = {name: t.kind for name, t in env.tools.items()}
    runs = [
        await Session(task, env, GoldAgent(task, kinds, ErrorInjection()), ScriptedUser(task)).run()
        for task in tasks
    ]
    tools = {env.name: [t.openai_schema() for t in env.tools.values()]}
    export_sft(runs, tools, lambda d: "general", tmp_path, ExportConfig(validation_share=0))
    path = tmp_path / "general" / "train.jsonl"
    rows = [
        parse_row(line, str(path), k) for k, line in enumerate(path.read_bytes().splitlines(), 1)
    ]
    tokenizer = train_tokenizer(rows, vocab_size=800)
    samples, report = load_samples([path], tokenizer, DataConfig(max_length=8192))
    assert report.rows_read == report.samples == len(runs) and report.problems == []
    for row, sample in zip(rows, samples, strict=True):
        supervised = _supervised(tokenizer, sample)
        for message in row.messages:
            for call in message.tool_calls or []:
                assert f'"name": "{call.function.name}"' in supervised
            if message.role == "user":
                assert message.content not in supervised
