"""JSON Schema of the architecture language, generated from the same pydantic models that validate
it, so editors and archspec agree. Numbers may also be `${...}` expressions."""
from __future__ import annotations

EXPR = {"type": "string", "pattern": r"^\$", "description": "an expression: $name or ${...}"}


def _allow_expressions(node):
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number", "boolean") and "enum" not in node:
            base = dict(node)
            return {"anyOf": [base, EXPR]}
        return {k: _allow_expressions(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_allow_expressions(v) for v in node]
    return node


def _layer_schemas(defs: dict) -> list:
    from archspec.layers.base import kinds

    items = []
    for name, kind in sorted(kinds().items()):
        s = kind.Options.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(s.pop("$defs", {}))
        s["properties"]["repeat"] = {"type": "integer", "minimum": 0}
        body = {"anyOf": [s, {"type": "null"}]}
        if kind.shorthand:
            body["anyOf"].append(s["properties"][kind.shorthand])
        items.append({"type": "object", "properties": {name: body}, "required": [name],
                      "additionalProperties": False, "description": kind.doc})
        if not s.get("required"):
            items.append({"const": name, "description": kind.doc})
    return items


def schema_for(kind: str = "architecture") -> dict:
    """The architecture language's schema. The experiment schema describes training's
    config models and is built beside the `schema` command (archspec.commands.schema)."""
    if kind != "architecture":
        raise ValueError(f"spec/ holds only the architecture schema, not {kind!r}")
    from archspec.spec.schema import Architecture

    top = Architecture.model_json_schema(by_alias=True)
    defs = top.setdefault("$defs", {})
    layer_items = _layer_schemas(defs)
    sugar = {"type": "object", "description": "residual / branches / a block from `blocks:`",
             "minProperties": 1, "maxProperties": 1}
    defs["Layer"] = {"anyOf": layer_items + [sugar, {"type": "string"}]}
    top["properties"]["layers"] = {"type": "array", "items": {"$ref": "#/$defs/Layer"}}
    top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    top["title"] = "archspec architecture"
    return _allow_expressions(top)
