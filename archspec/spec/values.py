"""Evaluate `$var` / `${expr}` inside option values, reporting a bad expression where it is
written; and the small values the expansion passes around."""
from __future__ import annotations

from archspec.errors import ErrorCollector
from archspec.spec import expr
from archspec.spec.locate import position
from archspec.spec.yaml_loader import YList, YMap


class _Bad:
    def __repr__(self):
        return "<invalid expression>"


BAD = _Bad()  # an expression that failed (its error is already reported)


def subst(errors: ErrorCollector, value, env, node, loc, path):
    """Evaluate every expression anywhere inside `value`; `node`/`loc` locate it."""
    if isinstance(value, str) and expr.is_expr(value):
        try:
            return expr.evaluate(value, env)
        except expr.Unknown:
            return BAD  # an earlier error left the input's shape unknown; it said why
        except expr.ExprError as exc:
            names = ", ".join(sorted(k for k in env if isinstance(k, str) and k != expr.IN))
            text = repr(value) if len(value) <= 200 else \
                f"{value[:80]!r}... ({len(value):,} characters)"
            errors.add(str(exc), position(node, loc, getattr(node, "pos", None)), path,
                       expected=exc.expected or
                       f"arithmetic on numbers and variables ({names or 'none'})",
                       found=f"{text}: {exc.found}" if exc.found else text, hint=exc.hint)
            return BAD
    if isinstance(value, dict):
        return {k: subst(errors, v, env, value, (k,), path) if isinstance(value, YMap)
                else subst(errors, v, env, node, loc, path) for k, v in value.items()}
    if isinstance(value, list):
        return [subst(errors, v, env, value if isinstance(value, YList) else node,
                      (k,) if isinstance(value, YList) else loc, path)
                for k, v in enumerate(value)]
    return value


def located_map(data: dict, pos) -> YMap:
    """A mapping archspec writes itself, every key located at `pos`."""
    return YMap(data, pos)


def empty(pos) -> YMap:
    """The options of `- flatten` or `- conv:`: none, located at the item."""
    return located_map({}, pos)
