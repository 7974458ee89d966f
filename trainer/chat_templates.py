"""Tool-aware chat templates (Jinja, as Hugging Face tokenizers run them), written for this project.

- `CHATML_TOOLS`: the offline default. ChatML turns, tool schemas in the system block, calls in
  `<tool_call>` tags, results as `<tool_response>` blocks in a user turn, and `{% generation %}`
  markers around what the agent writes, so `return_assistant_tokens_mask` works. Every rendering
  of a conversation's prefix is a prefix of the full rendering.
- `QWEN3_STYLE`: the same layout without generation markers, and, like Qwen3, it drops the
  `<think>` reasoning of assistant turns before the last user message. A conversation with
  reasoning in earlier turns therefore renders differently in full than at generation time.
- `LLAMA31_STYLE`: Llama-3.1-style headers, schemas in the system turn, calls as bare JSON
  `{"name": ..., "parameters": ...}` and results in `ipython` turns; `<|eot_id|>` ends a turn.

Tool-call `arguments` are dicts (rendered with `tojson`), as Hugging Face templates expect.
"""

from __future__ import annotations

_CHATML_SYSTEM = """
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{ messages[0].content + '\\n\\n' }}{% endif %}
{{- '# Tools\\n\\nThese functions are available, one JSON schema per line:\\n<tools>' }}
{%- for tool in tools %}{{ '\\n' + (tool | tojson) }}{% endfor %}
{{- '\\n</tools>\\n\\nTo call one, write a JSON object with its name and arguments between tags:\\n' }}
{{- '<tool_call>\\n{"name": <function name>, "arguments": <arguments object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}"""

_CHATML_TOOL_RESULT = """
{%- elif message.role == 'tool' %}
{%- if loop.first or loop.previtem.role != 'tool' %}{{ '<|im_start|>user' }}{% endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or loop.nextitem.role != 'tool' %}{{ '<|im_end|>\\n' }}{% endif %}"""

_CHATML_CALLS = """
{%- for call in message.tool_calls or [] %}
{%- if content or not loop.first %}{{ '\\n' }}{% endif %}
{{- '<tool_call>\\n{"name": ' + (call.function.name | tojson) + ', "arguments": ' }}
{{- call.function.arguments | tojson }}{{ '}\\n</tool_call>' }}
{%- endfor %}"""

_CHATML_OTHERS = """
{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"""

_CHATML_PROMPT = """
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""

CHATML_TOOLS = (
    _CHATML_SYSTEM
    + "\n{%- for message in messages %}"
    + _CHATML_OTHERS
    + _CHATML_TOOL_RESULT
    + """
{%- elif message.role == 'assistant' %}
{%- set content = message.content %}
{{- '<|im_start|>assistant\\n' }}
{%- generation %}{{ content }}"""
    + _CHATML_CALLS
    + """
{{- '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}
{%- endif %}
{%- endfor %}"""
    + _CHATML_PROMPT
)

QWEN3_STYLE = (
    """
{%- set state = namespace(last_user=-1) %}
{%- for message in messages %}
{%- if message.role == 'user' %}{% set state.last_user = loop.index0 %}{% endif %}
{%- endfor %}"""
    + _CHATML_SYSTEM
    + "\n{%- for message in messages %}"
    + _CHATML_OTHERS
    + _CHATML_TOOL_RESULT
    + """
{%- elif message.role == 'assistant' %}
{%- set content = message.content %}
{%- if loop.index0 < state.last_user and '</think>' in content %}
{%- set content = content.split('</think>')[-1].lstrip('\\n') %}
{%- endif %}
{{- '<|im_start|>assistant\\n' + content }}"""
    + _CHATML_CALLS
    + """
{{- '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}"""
    + _CHATML_PROMPT
)

LLAMA31_STYLE = """
{{- bos_token + '<|start_header_id|>system<|end_header_id|>\\n\\n' }}
{%- if messages[0].role == 'system' %}{{ messages[0].content }}{% endif %}
{%- if tools %}
{%- if messages[0].role == 'system' %}{{ '\\n\\n' }}{% endif %}
{{- 'To call a function, answer with only a JSON object {"name": <function name>, ' }}
{{- '"parameters": <arguments object>}, one per line. The functions:\\n\\n' }}
{%- for tool in tools %}{{ (tool | tojson(indent=2)) + '\\n\\n' }}{% endfor %}
{%- endif %}
{{- '<|eot_id|>' }}
{%- for message in messages %}
{%- if message.role in ('user', 'tool') or (message.role == 'system' and not loop.first) %}
{%- set header = 'ipython' if message.role == 'tool' else message.role %}
{{- '<|start_header_id|>' + header + '<|end_header_id|>\\n\\n' + message.content + '<|eot_id|>' }}
{%- elif message.role == 'assistant' %}
{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' + message.content }}
{%- for call in message.tool_calls or [] %}
{%- if message.content or not loop.first %}{{ '\\n' }}{% endif %}
{{- '{"name": ' + (call.function.name | tojson) + ', "parameters": ' }}
{{- (call.function.arguments | tojson) + '}' }}
{%- endfor %}
{{- '<|eot_id|>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"""
