"""The published form of a tool's schemas: what costs context and tells a model nothing is dropped."""

from __future__ import annotations

import functools
import json
from typing import Any

from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from pydantic import BaseModel


def compact_schema(schema: Any, output: bool = False) -> Any:
    """The published form of a schema: what costs context and tells a model nothing is dropped.

    Validation is unaffected: arguments are still checked by the full pydantic model. Dropped:
    generated titles; ``anyOf [T, null]`` (optional fields just are not required); null and false
    defaults (omitted means false); ``minimum: 1`` on integers and ``minLength: 1`` (ids and counts
    are positive and labels not empty, and all are still enforced); definitions used once are inlined.
    Outputs also lose defaults, descriptions and nested ``type: object`` (a result carries its values,
    field names say what they are, and nulls never appear because results are dumped with
    ``exclude_none``). An output's ``required`` lists exactly the fields that are always present:
    every one that cannot be null (with or without a default), so a client can rely on them.
    """
    return _inline_single_defs(_compact(schema, output))


def _compact(schema: Any, output: bool, nested: bool = False) -> Any:
    if isinstance(schema, list):
        return [_compact(s, output, nested) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or value is False or output):
            continue
        if key in ("description", "required") and output:
            continue  # an output's ``required`` is derived below
        if key == "minLength" and value == 1:
            continue
        if key == "minimum" and value == 1 and schema.get("type") == "integer":
            continue
        if key == "type" and value == "object" and output and nested and "properties" in schema:
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _compact(sub, output, True) for name, sub in value.items()}
        else:
            out[key] = _compact(value, output, True)
    if output and isinstance(schema.get("properties"), dict):
        present = [name for name, sub in schema["properties"].items() if not _nullable(sub)]
        if present:
            out["required"] = present
    arms = out.get("anyOf")
    if isinstance(arms, list):
        kept = [a for a in arms if a != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(arms):
            del out["anyOf"]
            out = {**kept[0], **out}
    return out


def _nullable(schema: Any) -> bool:
    """Whether a property's value may be null (then ``exclude_none`` leaves it out of a result)."""
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    return (
        kinds == "null" or (isinstance(kinds, list) and "null" in kinds) or any(map(_nullable, schema.get("anyOf", [])))
    )


def _inline_single_defs(schema: Any) -> Any:
    """Replace a ``$ref`` to a definition used only once by the definition itself."""
    if not isinstance(schema, dict) or "$defs" not in schema:
        return schema
    text = json.dumps(schema)
    defs = dict(schema["$defs"])
    once = {name for name in defs if text.count(f'"#/$defs/{name}"') == 1}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and ref[8:] in once:
            return walk({**defs[ref[8:]], **{k: v for k, v in node.items() if k != "$ref"}})
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    result = walk(schema)
    kept = {name: walk(d) for name, d in defs.items() if name not in once}
    if kept:
        result["$defs"] = kept
    return result


@functools.cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The published output schema of a model, as the SDK would derive it, compacted; once per model.

    (The SDK also inlines a root ``$ref``, which only a self-referencing model has: no output is one.)
    """
    return compact_schema(model.model_json_schema(schema_generator=StrictJsonSchema), output=True)
