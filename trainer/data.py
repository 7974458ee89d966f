"""Exported SFT rows as token ids with an agent-only loss mask, packed into fixed-length rows.

Rows are `pipeline.export`'s: OpenAI chat `messages` and `tools`, with `tools` and every call's
`arguments` as JSON strings; both are parsed here, because templates `tojson` the arguments and
expect dicts. A sample is the model's own chat-template rendering (tool schemas included) as token
ids, plus a loss mask: 1 on what the agent produces (its text, its tool calls and the end-of-turn
token that stops it), 0 on system, user and tool turns, which stay in the context.

Whole conversations, or one sample per assistant turn. A whole conversation is one sample per
trajectory with every turn supervised once: the cheapest, and exact when the template is
prefix-preserving for the row, i.e. each turn's context in the full rendering is what the template
renders when the model generates that turn. Templates like Qwen3's drop the `<think>` reasoning of
assistant turns before the last user message, so for a row with such reasoning the full rendering
is a context the model never sees; that row falls back to one sample per assistant turn, each the
exact generation-time context plus that one turn. `split_turns=True` splits every row.

The mask. The turns come from incremental rendering: messages[:i] with the generation prompt, then
messages[:i+1]; the turn is the text between them, cut after its end-of-turn token (the
tokenizer's eos by default), so a separator the template writes after it stays context. The same
renderings check the prefix property. Where the template has `{% generation %}` markers, a whole
conversation's mask is the template's own (`return_assistant_tokens_mask`); elsewhere characters
map to tokens through the fast tokenizer's offsets, a token counting as the agent's when it
overlaps a turn, the rule Hugging Face applies to the markers. A sample ends at its last agent
token: a trailing user or tool turn would be context for nothing.

Length. A sample longer than `max_length` is dropped and counted, never truncated: a cut
trajectory would teach the model to stop in the middle of a call. A row that cannot be read (not
JSON, a malformed tool call, `tools` not a list, no assistant turn) is reported with its
`path:line` and field, and skipped; the rest goes on.

Packing. Samples go into rows of exactly `max_length` tokens, best-fit decreasing. `position_ids`
restart at 0 at each sample. With them, no attention mask and no KV cache (`use_cache=False`),
Hugging Face finds the boundaries itself: flash-attention as variable-length sequences, sdpa and
eager as a block mask. The trainer passes `PackedBatch.attention_mask` instead, which builds the
block-diagonal causal 4D mask from the same positions, which holds whatever the cache setting or
library version. Labels are -100 off the mask, on padding, and on each sample's first token, so no
loss is computed across a boundary.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import orjson
import structlog
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import BatchEncoding, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .chat_templates import CHATML_TOOLS

log = structlog.get_logger(__name__)

IGNORE_INDEX = -100  # the label Hugging Face's cross-entropy skips
CHATML_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class RowProblem(BaseModel):
    """A skipped dataset row; `str()` reads `path:line: field: reason`."""

    path: str
    line: int
    field: str
    reason: str
    kind: Literal["bad_row", "no_assistant"] = "bad_row"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.reason}"


class DataError(ValueError):
    """A row that cannot become a training sample; carries its `RowProblem` for the report."""

    def __init__(self, problem: RowProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _from_json_text(value: Any) -> Any:
    """A field the export stores as JSON text, parsed; anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


class FunctionCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any]

    # Export stores arguments as a JSON string; templates render a dict with `tojson`.
    _parse_json = field_validator("arguments", mode="before")(_from_json_text)


class ToolCall(BaseModel):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    # Keys a template may read beyond OpenAI's (e.g. `reasoning_content`) reach it unchanged.
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        """OpenAI sends null content next to tool calls; templates test and concatenate text."""
        return "" if value is None else value


class Conversation(BaseModel):
    """One parsed row, with the file and line it came from."""

    messages: list[Message] = Field(min_length=1)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    path: str
    line: int

    # Export stores the tool schemas as one JSON string (see `pipeline.export`).
    _parse_json = field_validator("tools", mode="before")(_from_json_text)

    def template_messages(self) -> list[dict[str, Any]]:
        """The messages as chat templates read them: absent keys left out, arguments as dicts."""
        return [m.model_dump(exclude_none=True) for m in self.messages]

    def error(
        self, field: str, reason: str, kind: Literal["bad_row", "no_assistant"] = "bad_row"
    ) -> DataError:
        return DataError(
            RowProblem(path=self.path, line=self.line, field=field, reason=reason, kind=kind)
        )


class Sample(BaseModel):
    """A conversation, or one assistant turn and its context, as token ids and a loss mask."""

    model_config = ConfigDict(frozen=True)

    input_ids: list[int]
    loss_mask: list[int]  # 1 on the agent's tokens
    path: str
    line: int
    turn: int | None = None  # the supervised message's index, when the row was split per turn

    @model_validator(mode="after")
    def _aligned(self) -> Sample:
        if len(self.input_ids) != len(self.loss_mask):
            raise ValueError(
                f"{len(self.input_ids)} input ids but {len(self.loss_mask)} mask entries"
            )
        return self


class DataConfig(BaseModel):
    """How rows become samples."""

    max_length: int = Field(default=4096, gt=0)
    split_turns: bool = False  # one sample per assistant turn for every row, not only where needed
    use_markers: bool = True  # take the mask from `{% generation %}` where the template has them
    end_of_turn: str | None = None  # the text that ends an agent turn; None: the tokenizer's eos
    max_rows: int | None = Field(default=None, gt=0)  # an even spread of a file's rows


class DataReport(BaseModel):
    """What reading the dataset made of it, row problems named by `path:line`."""

    rows_read: int = 0
    samples: int = 0
    rows_split: int = 0  # rows trained one sample per assistant turn
    tokens: int = 0
    supervised_tokens: int = 0
    dropped_too_long: int = 0  # samples, not rows: a split row may lose some turns only
    dropped_no_assistant: int = 0
    bad_rows: int = 0
    problems: list[RowProblem] = Field(default_factory=list)


def parse_row(line: bytes | str, path: str, line_no: int) -> Conversation:
    """One JSONL line as a conversation; DataError naming `path:line` and the field otherwise."""

    def problem(field: str, reason: str) -> DataError:
        return DataError(RowProblem(path=path, line=line_no, field=field, reason=reason))

    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise problem("row", f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise problem("row", f"not a JSON object: {str(raw)[:80]!r}")
    try:
        conversation = Conversation.model_validate({**raw, "path": path, "line": line_no})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "row"
        raise problem(field, f"{first['msg']}: {str(first['input'])[:80]!r}") from None
    if not any(m.role == "assistant" for m in conversation.messages):
        raise conversation.error("messages", "no assistant turn", kind="no_assistant")
    return conversation


def read_conversations(
    path: Path, max_rows: int | None = None
) -> Iterator[Conversation | RowProblem]:
    """Every non-blank line of a JSONL file, parsed, or the problem that stops it. With
    `max_rows`, an even spread of at most that many lines (every k-th), not the file's head:
    exports are sorted by task id, so a head would hold a few domains only."""
    stride = 1
    if max_rows is not None:
        with path.open("rb") as file:
            lines = sum(1 for _ in file)
        stride = max(1, -(-lines // max_rows))
    with path.open("rb") as file:
        for line_no, line in enumerate(file, 1):
            if (line_no - 1) % stride or not line.strip():
                continue
            try:
                yield parse_row(line, str(path), line_no)
            except DataError as exc:
                yield exc.problem


def _schemas(tools: list[dict[str, Any]]) -> list[dict[Any, Any] | Callable[..., Any]] | None:
    """The tools as Hugging Face types them; None for none, which templates test with `if tools`."""
    return [*tools] or None


def _render(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    generation_prompt: bool,
) -> str:
    text = tokenizer.apply_chat_template(
        messages, tools=_schemas(tools), tokenize=False, add_generation_prompt=generation_prompt
    )
    return cast(str, text)


@dataclass(frozen=True, slots=True)
class _Turn:
    index: int  # of the assistant message
    context: str  # the template's rendering of the messages before it, generation prompt included
    text: str  # what the template renders for the turn, through its end-of-turn token

    @property
    def span(self) -> tuple[int, int]:
        return len(self.context), len(self.context) + len(self.text)


def _turns(
    tokenizer: PreTrainedTokenizerBase,
    conversation: Conversation,
    messages: list[dict[str, Any]],
    end_of_turn: str | None,
) -> list[_Turn]:
    """Each assistant turn as its generation-time context and its own text."""
    turns = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if index == 0:
            raise conversation.error("messages.0", "an assistant turn needs a turn before it")
        context = _render(tokenizer, messages[:index], conversation.tools, generation_prompt=True)
        rendered = _render(
            tokenizer, messages[: index + 1], conversation.tools, generation_prompt=False
        )
        if not rendered.startswith(context):
            raise conversation.error(
                f"messages.{index}",
                "the template's generation prompt is not where its rendering of this turn starts",
            )
        text = rendered[len(context) :]
        if end_of_turn and (cut := text.rfind(end_of_turn)) >= 0:
            text = text[: cut + len(end_of_turn)]
        turns.append(_Turn(index, context, text))
    return turns


def _offsets_mask(
    tokenizer: PreTrainedTokenizerBase, text: str, spans: Sequence[tuple[int, int]]
) -> tuple[list[int], list[int]]:
    """Token ids of `text`, 1 on each token overlapping one of the sorted, disjoint spans."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask, k = [], 0
    for start, end in encoding["offset_mapping"]:
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        mask.append(int(k < len(spans) and end > spans[k][0]))
    return list(encoding["input_ids"]), mask


def _marker_mask(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[list[int], list[int]]:
    encoding = cast(
        BatchEncoding,
        tokenizer.apply_chat_template(
            messages,
            tools=_schemas(tools),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        ),
    )
    return list(encoding["input_ids"]), list(encoding["assistant_masks"])


def _sample(
    ids: list[int], mask: list[int], conversation: Conversation, turn: int | None
) -> Sample:
    """The sample, ending at its last supervised token: what follows teaches nothing."""
    if not any(mask):
        raise conversation.error(
            "messages" if turn is None else f"messages.{turn}",
            "the template renders no tokens for the assistant",
        )
    end = len(mask) - mask[::-1].index(1)
    return Sample(
        input_ids=ids[:end],
        loss_mask=mask[:end],
        path=conversation.path,
        line=conversation.line,
        turn=turn,
    )


def conversation_samples(
    tokenizer: PreTrainedTokenizerBase, conversation: Conversation, config: DataConfig
) -> list[Sample]:
    """One whole-conversation sample where the template is prefix-preserving for the row (and
    `split_turns` is off), else one sample per assistant turn; DataError if the template cannot
    render the row's turns on their own."""
    messages = conversation.template_messages()
    turns = _turns(tokenizer, conversation, messages, config.end_of_turn or tokenizer.eos_token)
    if not config.split_turns:
        full = _render(tokenizer, messages, conversation.tools, generation_prompt=False)
        if all(full.startswith(t.context + t.text) for t in turns):
            template = tokenizer.get_chat_template(None, conversation.tools or None)
            if config.use_markers and _GENERATION_TAG.search(template):
                ids, mask = _marker_mask(tokenizer, messages, conversation.tools)
            else:
                ids, mask = _offsets_mask(tokenizer, full, [t.span for t in turns])
            return [_sample(ids, mask, conversation, None)]
    return [
        _sample(*_offsets_mask(tokenizer, t.context + t.text, [t.span]), conversation, t.index)
        for t in turns
    ]


def _record(report: DataReport, problem: RowProblem) -> None:
    if problem.kind == "no_assistant":
        report.dropped_no_assistant += 1
    else:
        report.bad_rows += 1
    report.problems.append(problem)
    log.warning(
        "row_skipped",
        where=f"{problem.path}:{problem.line}",
        field=problem.field,
        reason=problem.reason,
    )


def load_samples(
    paths: Iterable[Path], tokenizer: PreTrainedTokenizerBase, config: DataConfig
) -> tuple[list[Sample], DataReport]:
    """Every row of the JSONL files as samples of at most `max_length` tokens, and the report."""
    report = DataReport()
    samples: list[Sample] = []
    for path in paths:
        for item in read_conversations(Path(path), config.max_rows):
            report.rows_read += 1
            if isinstance(item, RowProblem):
                _record(report, item)
                continue
            try:
                made = conversation_samples(tokenizer, item, config)
            except DataError as exc:
                _record(report, exc.problem)
                continue
            report.rows_split += made[0].turn is not None
            for sample in made:
                if len(sample.input_ids) > config.max_length:
                    report.dropped_too_long += 1
                    continue
                samples.append(sample)
                report.tokens += len(sample.input_ids)
                report.supervised_tokens += sum(sample.loss_mask)
    report.samples = len(samples)
    log.info("samples_loaded", **report.model_dump(exclude={"problems"}))
    return samples, report


def _byte_level_bpe() -> Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return bpe


def _chatml_tokenizer(bpe: Tokenizer, chat_template: str) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def train_tokenizer(
    conversations: Iterable[Conversation],
    vocab_size: int = 8192,
    chat_template: str = CHATML_TOOLS,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE for a model trained from scratch (the offline path has no pretrained
    tokenizer), learned from the conversations as the ChatML `chat_template` renders them, so its
    merges fit the text the model reads; eos is `<|im_end|>`, padding `<|endoftext|>`."""
    renderer = _chatml_tokenizer(_byte_level_bpe(), chat_template)  # rendering needs no vocabulary
    texts = (
        _render(renderer, c.template_messages(), c.tools, generation_prompt=False)
        for c in conversations
    )
    bpe = _byte_level_bpe()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(CHATML_SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    return _chatml_tokenizer(bpe, chat_template)


@dataclass(frozen=True, slots=True)
class PackedRow:
    """Whole samples laid end to end in exactly `max_length` tokens (plain lists: the loader's
    inner loop, not a boundary)."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    length: int  # tokens of its samples; the padding follows


@dataclass(frozen=True, slots=True)
class PackedBatch:
    """Tensors of shape (batch, max_length) for a causal LM's forward with `labels`."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor

    def attention_mask(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The block-diagonal causal mask that eager attention needs to keep samples apart."""
        return block_causal_mask(self.position_ids, dtype)


def _packed_row(samples: Sequence[Sample], max_length: int, pad_id: int) -> PackedRow:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for sample in samples:
        ids += sample.input_ids
        labels.append(IGNORE_INDEX)  # the first token would be predicted from the previous sample
        labels += [
            token if supervised else IGNORE_INDEX
            for token, supervised in zip(sample.input_ids[1:], sample.loss_mask[1:], strict=True)
        ]
        positions += range(len(sample.input_ids))
    pad = max_length - len(ids)
    return PackedRow(
        input_ids=ids + [pad_id] * pad,
        labels=labels + [IGNORE_INDEX] * pad,
        position_ids=positions + list(range(pad)),  # padding is one more sample, never attended
        length=len(ids),
    )


def pack(samples: Sequence[Sample], max_length: int, pad_id: int = 0) -> list[PackedRow]:
    """Samples into rows of `max_length` tokens, best-fit decreasing: longest first, each into
    the fullest row it fits (first-fit's packing quality at O(n log n)). Deterministic: equal
    lengths keep their input order. A sample longer than `max_length` is a ValueError
    (`load_samples` drops those)."""
    order = sorted(range(len(samples)), key=lambda k: -len(samples[k].input_ids))
    rows: list[list[Sample]] = []
    room: list[tuple[int, int]] = []  # (free tokens, row index), ascending
    for k in order:
        size = len(samples[k].input_ids)
        if size > max_length:
            where = f"{samples[k].path}:{samples[k].line}"
            raise ValueError(f"sample of {where} has {size} tokens, over max_length {max_length}")
        at = bisect.bisect_left(room, (size, -1))
        if at < len(room):
            free, row = room.pop(at)
        else:
            free, row = max_length, len(rows)
            rows.append([])
        rows[row].append(samples[k])
        if free > size:
            bisect.insort(room, (free - size, row))
    return [_packed_row(row, max_length, pad_id) for row in rows]


def collate(rows: Sequence[PackedRow]) -> PackedBatch:
    return PackedBatch(
        input_ids=torch.tensor([r.input_ids for r in rows], dtype=torch.long),
        labels=torch.tensor([r.labels for r in rows], dtype=torch.long),
        position_ids=torch.tensor([r.position_ids for r in rows], dtype=torch.long),
    )


def block_causal_mask(
    position_ids: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(batch, 1, length, length) additive mask: 0 where a token may attend (itself and the
    earlier tokens of its own sample, a sample starting at position 0), the dtype's minimum
    elsewhere; eager and sdpa attention add it to their scores."""
    sample = (position_ids == 0).cumsum(-1)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    allowed = (sample[:, :, None] == sample[:, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
