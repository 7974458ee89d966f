"""Tool arguments known only by a JSON Schema (a corpus tool spec, an MCP or OpenAPI tool).

Such a tool's schema is its source of truth, so the agent sees it unchanged and the arguments
are validated by a pydantic-core validator compiled from it, then handed to the tool as a dict.
Compiling the validator takes ~30 us; a pydantic model per tool (`create_model` plus its JSON
schema) takes ~1.4 ms (measured), which dominated building thousands of generated domains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import SchemaValidator, core_schema

_SCALARS: dict[str, Callable[[], core_schema.CoreSchema]] = {
    "string": core_schema.str_schema,
    "integer": core_schema.int_schema,
    "boolean": core_schema.bool_schema,
    "null": core_schema.none_schema,
}


def _value_schema(schema: Any) -> core_schema.CoreSchema:
    """One JSON Schema value, lax like a pydantic field; what it cannot express is `Any`."""
    if not isinstance(schema, Mapping):
        return core_schema.any_schema()
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return core_schema.literal_schema(list(schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        options: list[core_schema.CoreSchema | tuple[core_schema.CoreSchema, str]] = [
            _value_schema({**schema, "type": k}) for k in kind if isinstance(k, str)
        ]
        return core_schema.union_schema(options) if options else core_schema.any_schema()
    if kind == "number":  # an int stays an int (JSON has one number type; Python two)
        return core_schema.union_schema(
            [core_schema.int_schema(strict=True), core_schema.float_schema()]
        )
    if kind in _SCALARS:
        return _SCALARS[kind]()
    if kind == "array":
        return core_schema.list_schema(_value_schema(schema.get("items")))
    if kind == "object":
        return core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
    return core_schema.any_schema()


class JsonSchemaArguments:
    """A tool's argument type from a JSON Schema object; validates to a `dict`.

    Quacks like a pydantic model class where `Tool` needs it (`model_json_schema`,
    `model_validate`, `model_validate_json`), and raises the same `ValidationError`.
    Required properties must be present; optional ones may be absent or null; others are
    refused, as a pydantic model with `extra="forbid"` would. With `validate=False` any JSON
    object passes as it came, for tools that check their own arguments the way the benchmark
    they reproduce does (τ-bench calls tools unvalidated).
    """

    def __init__(self, schema: Mapping[str, Any], *, validate: bool = True) -> None:
        self.schema = dict(schema)
        if not validate:
            self._validator = SchemaValidator(core_schema.dict_schema(core_schema.str_schema()))
            return
        props = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        fields = {
            name: core_schema.typed_dict_field(
                _value_schema(prop)
                if name in required
                else core_schema.nullable_schema(_value_schema(prop)),
                required=name in required,
            )
            for name, prop in props.items()
        }
        self._validator = SchemaValidator(
            core_schema.typed_dict_schema(fields, extra_behavior="forbid")
        )

    def model_json_schema(self) -> dict[str, Any]:
        return dict(self.schema)

    def model_validate(self, obj: Any) -> dict[str, Any]:
        value: dict[str, Any] = self._validator.validate_python(obj)
        return value

    def model_validate_json(self, json_data: str | bytes) -> dict[str, Any]:
        value: dict[str, Any] = self._validator.validate_json(json_data)
        return value
