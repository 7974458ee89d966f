"""agentscaler.trainer: supervised fine-tuning on exported trajectories, in two stages.

`data` turns exported rows into token ids with a loss mask on the agent's own tokens and packs
them; `chat_templates` holds the project's tool-aware chat templates; `model` builds the base model
(any Hugging Face causal LM, or the offline Qwen3) and shards it with FSDP2; `train` is one stage's
loop; `checkpoint` its sharded checkpoints and the Hugging Face export; `stages` chains general ->
vertical; `launch` starts the ranks under torchrun, and `python -m agentscaler.trainer` is one rank.

Nothing is re-exported here: importing the data side must not pull in torch.distributed's
checkpointing and FSDP.
"""
