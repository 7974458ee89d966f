"""The model a stage trains, and how it is sharded over the ranks.

A base model is any Hugging Face causal LM, by hub name or local path, or `offline`: a small
Qwen3-architecture model built from a config, for a tokenizer trained on the run's own data (see
`data.train_tokenizer`), so that the whole pipeline trains on a laptop with nothing downloaded.

Master weights are fp32 whatever the checkpoint's dtype: FSDP's mixed precision casts them to bf16
for compute on GPU, and AdamW updates fp32 values. Attention is sdpa on CPU and GPU alike, given the
trainer's 4D block mask for packed rows: it honours that mask exactly as eager attention does (the
logits agree to 1e-6) and on CPU runs a step about 2.5x faster, since eager materializes, scales,
masks and softmaxes every (length x length) score matrix in separate passes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from agentscaler.runtime import UserError

from .config import OFFLINE


def offline_config(tokenizer: PreTrainedTokenizerBase, max_length: int) -> Qwen3Config:
    """A Qwen3 shape (~1M parameters with a small vocabulary) that trains from scratch on CPU
    at about a second per step of a few thousand tokens."""
    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=False,
    )


def load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """A pretrained model's tokenizer; it must carry a chat template, which defines the loss mask."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not tokenizer.chat_template:
        raise UserError(f"the tokenizer of {source!r} has no chat template to render rows with")
    if tokenizer.pad_token_id is None:  # padding is never attended nor supervised
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(
    source: str, tokenizer: PreTrainedTokenizerBase, *, max_length: int
) -> PreTrainedModel:
    """The base model in fp32 on CPU (FSDP moves each shard to its device); `offline` is
    initialized from the global RNG, which the trainer seeds the same on every rank."""
    if source == OFFLINE:
        config = offline_config(tokenizer, max_length)
        config._attn_implementation = "sdpa"
        model: PreTrainedModel = Qwen3ForCausalLM(config)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch.float32, attn_implementation="sdpa"
        )
    model.config.use_cache = False
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(
            f"tokenizer has {len(tokenizer)} tokens but {source!r} embeds {model.config.vocab_size}"
        )
    return model


def decoder_layers(model: PreTrainedModel) -> list[nn.Module]:
    """The repeated blocks, found the way accelerate finds them: by `_no_split_modules`."""
    names = set(model._no_split_modules or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise UserError(f"{type(model).__name__} names no decoder layer class to shard")
    return layers


def parallelize(
    model: PreTrainedModel, mesh: DeviceMesh, *, bf16: bool, activation_checkpointing: bool
) -> PreTrainedModel:
    """Activation checkpointing first, then FSDP2 per decoder layer, then the root (embeddings,
    final norm and head): the order torchtitan uses, so each layer's recomputation all-gathers
    its own shard only."""
    if activation_checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if bf16
        else MixedPrecisionPolicy()
    )
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model
