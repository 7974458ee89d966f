"""TRL's SFTTrainer trains on an exported file, loss on the assistant's tokens only.

Everything is built here: a byte-level BPE tokenizer trained on the export itself, a chat
template with `{% generation %}` markers (TRL needs them for `assistant_only_loss`), a tiny
Qwen3-architecture model from a config. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
from trl import SFTConfig, SFTTrainer

from agentscaler.pipeline.export import ExportConfig, export_sft
from agentscaler.runtime import Environment, ErrorInjection, GoldAgent, ScriptedUser, Session, Task

pytestmark = pytest.mark.anyio

TEMPLATE = """{%- if tools %}<|im_start|>system
{%- for m in messages if m.role == 'system' %}
{{ m.content }}{% endfor %}
# Tools
{{ tools | tojson }}<|im_end|>
{%- endif %}
{%- for m in messages %}
{%- if m.role == 'user' %}<|im_start|>user
{{ m.content }}<|im_end|>
{%- elif m.role == 'tool' %}<|im_start|>tool
{{ m.content }}<|im_end|>
{%- elif m.role == 'assistant' %}<|im_start|>assistant
{% generation %}{{ m.content }}
{%- for c in m.tool_calls or [] %}<tool_call>{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments }}}</tool_call>
{%- endfor %}<|im_end|>{% endgeneration %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def _tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = TEMPLATE
    return tokenizer


async def test_sft_trainer_runs_on_an_export_with_assistant_only_loss(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    kinds = {name: t.kind for name, t in env.tools.items()}
    runs = [
        await Session(task, env, GoldAgent(task, kinds, ErrorInjection()), ScriptedUser(task)).run()
        for task in tasks
    ]
    tools = {env.name: [t.openai_schema() for t in env.tools.values()]}
    export_sft(runs, tools, lambda d: "general", tmp_path, ExportConfig(validation_share=0))
    path = str(tmp_path / "general" / "train.jsonl")
    rows = datasets.load_dataset(
        "json", data_files=path, split="train", cache_dir=str(tmp_path / "hf")
    )

    def templated(row: dict[str, Any]) -> dict[str, Any]:  # tools are stored as a JSON string
        return {"tools": json.loads(row["tools"])}

    rows = rows.map(templated)
    tokenizer = _tokenizer([json.dumps(r) for r in rows])
    encoded = tokenizer.apply_chat_template(
        rows[0]["messages"],
        tools=rows[0]["tools"],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    supervised = tokenizer.decode(
        [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    )
    calls = [c for m in rows[0]["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    assert calls and all(c["function"]["name"] in supervised for c in calls)
    assert rows[0]["messages"][1]["content"] not in supervised  # the user's words stay context
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=2,
        assistant_only_loss=True,
        max_length=4096,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    trainer = SFTTrainer(
        model=Qwen3ForCausalLM(config), args=args, train_dataset=rows, processing_class=tokenizer
    )
    result = trainer.train()
    assert result.global_step == 2 and 0 < result.training_loss < 20
