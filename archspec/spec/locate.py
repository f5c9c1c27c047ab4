"""Turn pydantic validation errors into located SpecErrors (file:line:col, expected, found)."""
from __future__ import annotations

from pydantic import BaseModel, ValidationError

from archspec.errors import ErrorCollector, Pos, did_you_mean
from archspec.spec.yaml_loader import YList, YMap


def position(node, loc, fallback: Pos | None, at_key: bool = False) -> Pos | None:
    """Walk a loaded YAML tree along a pydantic `loc` and return the deepest known position."""
    pos = getattr(node, "pos", None) or fallback
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, YMap) and part in node:
            pos = (node.key_pos if (last and at_key) else node.val_pos)[part]
            node = node[part]
        elif isinstance(node, YList) and isinstance(part, int) and part < len(node):
            pos, node = node.item_pos[part], node[part]
        else:
            break
    return pos


def field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def validate(model: type[BaseModel], data, node, errors: ErrorCollector, path: str,
             fallback: Pos | None = None, what: str = ""):
    """Validate `data` (plain values) against `model`; `node` is the YAML it came from."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        seen = set()
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            key = (loc[:1], err["type"] == "extra_forbidden")
            if key in seen:  # unions report one failure per member; keep the first per field
                continue
            seen.add(key)
            _report(model, err, loc, node, errors, path, fallback, what)
        return None


_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none", "tuple", "literal"}


def _is_union_tag(part) -> bool:
    """pydantic names union members in `loc` (`int`, `list[int]`, `literal['a']`)."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "(" in part)


def _report(model, err, loc, node, errors, path, fallback, what):
    typ, dotted = err["type"], ".".join(str(p) for p in loc)
    where = f"{path}" if path else ""
    if typ == "extra_forbidden":
        names = field_names(_submodel(model, loc[:-1]) or model)
        errors.add(f"unknown option '{loc[-1]}'" + (f" for {what}" if what else ""),
                   position(node, loc, fallback, at_key=True), where,
                   expected="one of: " + ", ".join(n for n in names if n not in ("name", "inputs"))
                   + ", name, inputs", found=repr(loc[-1]),
                   hint=did_you_mean(loc[-1], names))
    elif typ == "missing":
        errors.add(f"missing required option '{dotted}'" + (f" for {what}" if what else ""),
                   position(node, loc[:-1], fallback), where,
                   expected=f"'{loc[-1]}'", found="nothing")
    else:
        found = err.get("input")
        errors.add(f"bad value for '{dotted}'" if dotted else (err["msg"]),
                   position(node, loc, fallback), where,
                   expected=_expected(err), found=_short(found),
                   hint="write numbers without quotes" if isinstance(found, str) and _numeric(found)
                   else None)


def _submodel(model, loc):
    for part in loc:
        f = model.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(f, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _expected(err) -> str:
    msg = err["msg"]
    for prefix in ("Input should be ", "Value error, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
