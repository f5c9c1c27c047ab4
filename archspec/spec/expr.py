"""Tiny, safe arithmetic for widths and counts: `${maps * 4}`, `${2 if i == 0 else 1}`.

Only numbers, names bound by blocks and variables, arithmetic, comparisons, `and/or/not`,
conditional expressions and a few pure functions are allowed; nothing else is evaluated.
"""
from __future__ import annotations

import ast
import math
import operator
import re

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCS = {"min": min, "max": max, "int": int, "round": round, "abs": abs,
          "ceil": math.ceil, "floor": math.floor}
_WHOLE = re.compile(r"^\$\{(.*)\}$", re.S)
_BARE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_INLINE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
MAX_POW = 64


class ExprError(ValueError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def is_expr(value) -> bool:
    return isinstance(value, str) and "$" in value


def evaluate(source: str, env: dict):
    """Evaluate one `${...}` / `$name` string. A whole-string expression keeps its type;
    an expression inside other text is formatted into it (`conv${i}` -> `conv3`)."""
    m = _WHOLE.match(source) or _BARE.match(source)
    if m and (m.re is _BARE or "${" not in m.group(1)):
        return _eval_text(m.group(1), env)
    return _INLINE.sub(lambda mm: str(_eval_text(mm.group(1) or mm.group(2), env)), source)


def _eval_text(text: str, env: dict):
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"cannot parse expression '{text}'",
                        "use arithmetic on numbers and variable names, e.g. ${maps * 4}") from None
    return _ev(tree.body, env)


def _ev(node, env):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        from archspec.errors import did_you_mean
        raise ExprError(f"unknown variable '{node.id}'",
                        did_you_mean(node.id, env) or f"known: {', '.join(sorted(env)) or 'none'}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _ev(node.left, env), _ev(node.right, env)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_POW:
            raise ExprError(f"exponent {right} is too large")
        try:
            return _BIN[type(node.op)](left, right)
        except (ZeroDivisionError, TypeError) as exc:
            raise ExprError(f"cannot evaluate: {exc}") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        v = _ev(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
    if isinstance(node, ast.Compare):
        left = _ev(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            if type(op) not in _CMP:
                break
            right = _ev(comp, env)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        else:
            return True
    if isinstance(node, ast.BoolOp):
        vals = [_ev(v, env) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.IfExp):
        return _ev(node.body, env) if _ev(node.test, env) else _ev(node.orelse, env)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS and not node.keywords):
        try:
            return _FUNCS[node.func.id](*[_ev(a, env) for a in node.args])
        except (TypeError, ValueError) as exc:
            raise ExprError(f"cannot evaluate {node.func.id}(): {exc}") from None
    raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression",
                    "only arithmetic, comparisons, 'x if c else y' and "
                    + ", ".join(_FUNCS) + " are allowed")
