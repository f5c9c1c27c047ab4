"""Tiny, safe arithmetic for widths and counts: `${maps * 4}`, `${2 if i == 0 else 1}`.

Only numbers, names bound by blocks and variables, arithmetic, comparisons, `and/or/not`,
conditional expressions, a few pure functions, indexing of tuples and the attributes of a
value that offers them (`in.channels`: see spec/inshape.py) are allowed; nothing else is
evaluated.
"""
from __future__ import annotations

import ast
import functools
import io
import keyword
import math
import operator
import re
import tokenize

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
MAX_BITS = 4096       # integers beyond 2**4096 (about 10**1233) are refused, not computed
MAX_TEXT = 10_000     # longest string an expression may build (`'a' * n`)
MAX_SOURCE = 10_000   # longest expression text
IN = "in"             # the name of the input's shape (`${in.channels}`)
BLOCK_INDEX = "block_index"  # inside a block: its instances before this one, network-wide
_IN_ID = "__in__"     # what `in` is parsed as: `in` is a Python keyword
_HAS_IN = re.compile(r"\bin\b")


class ExprError(ValueError):
    """A bad expression; `expected`/`found` replace the generic ones where they say more."""

    def __init__(self, message: str, hint: str | None = None, expected: str | None = None,
                 found: str | None = None):
        super().__init__(message)
        self.hint, self.expected, self.found = hint, expected, found


class Unknown(Exception):
    """The expression reads a value an earlier error left unknown (the shape of a layer
    that failed): it fails without a second report."""


def is_expr(value) -> bool:
    return isinstance(value, str) and "$" in value


def evaluate(source: str, env: dict):
    """Evaluate one `${...}` / `$name` string. A whole-string expression keeps its type;
    an expression inside other text is formatted into it (`conv${i}` -> `conv3`)."""
    m = _WHOLE.match(source) or _BARE.match(source)
    if m and (m.re is _BARE or "${" not in m.group(1)):
        value = _eval_text(m.group(1), env)
        return list(value) if isinstance(value, tuple) else value  # `${in.shape}`: a list
    return _INLINE.sub(lambda mm: str(_eval_text(mm.group(1) or mm.group(2), env)), source)


def _eval_text(text: str, env: dict):
    if len(text) > MAX_SOURCE:
        raise ExprError(f"the expression is {len(text):,} characters long",
                        f"an expression has at most {MAX_SOURCE:,} characters")
    try:
        tree = _parse(text.strip())
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the text
        raise ExprError(f"cannot parse expression '{_short(text)}'",
                        "use arithmetic on numbers and variable names, e.g. ${maps * 4}") from None
    except (RecursionError, MemoryError):
        raise ExprError("the expression nests too deeply",
                        "write it with fewer nested parentheses or operators") from None
    try:
        value = _ev(tree.body, env)
    except RecursionError:
        raise ExprError("the expression nests too deeply",
                        "write it with fewer nested parentheses or operators") from None
    if hasattr(value, "expr_attribute"):
        raise ExprError(f"'{_short(text.strip())}' is the input itself, not a number",
                        "read one of its attributes: ${in.channels}, ${in.h}, ${in.shape}",
                        expected="a number, e.g. ${in.channels}", found=repr(value))
    return value


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """Parsed once per distinct text: a repeated block evaluates the same expressions for
    every instance. Trees are only read; a text that fails to parse is not cached."""
    return ast.parse(_rename_in(text) if _HAS_IN.search(text) else text, mode="eval")


def _rename_in(text: str) -> str:
    """`in` where an operand is expected (`in.h`, `2 * in.w`) becomes a name Python can
    parse; after an operand (`x in y`) it stays the operator, which is not allowed."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text  # ast.parse says what is wrong
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spots, after_operand = [], False
    for tok in tokens:
        if tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                        tokenize.DEDENT):
            continue
        if tok.type == tokenize.NAME and tok.string == IN and not after_operand:
            spots.append(starts[tok.start[0] - 1] + tok.start[1])
            after_operand = True
        else:
            after_operand = _ends_operand(tok)
    for at in reversed(spots):
        text = text[:at] + _IN_ID + text[at + len(IN):]
    return text


def _ends_operand(tok) -> bool:
    if tok.type == tokenize.NAME:
        return not keyword.iskeyword(tok.string) or tok.string in ("True", "False", "None")
    return tok.type in (tokenize.NUMBER, tokenize.STRING) or tok.string in (")", "]", "}")


def _unparse(node) -> str:
    return _short(ast.unparse(node).replace(_IN_ID, IN))


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _check_size(op, left, right) -> None:
    """Refuse, before computing it, a result too large to be a width or a count: a huge
    power or product of integers, or a repeated string that would fill the memory."""
    ints = all(isinstance(v, int) for v in (left, right))
    if isinstance(op, ast.Pow) and ints and right > 0 and abs(left) > 1:
        bits = (abs(left).bit_length() - 1) * right
    elif isinstance(op, (ast.Mult, ast.Add, ast.Sub)) and ints:
        bits = (abs(left).bit_length() + abs(right).bit_length() if isinstance(op, ast.Mult)
                else max(abs(left).bit_length(), abs(right).bit_length()))
    else:
        bits = 0
    if bits > MAX_BITS:
        raise ExprError(f"the result has about {int(bits * 0.30103):,} digits",
                        "a width or count this large cannot be meant; check the expression")
    text = next((v for v in (left, right) if isinstance(v, str)), None)
    count = next((v for v in (left, right) if isinstance(v, int)), None)
    if isinstance(op, ast.Mult) and text is not None and count is not None and \
            len(text) * max(count, 0) > MAX_TEXT:
        raise ExprError(f"the text would be {len(text) * count:,} characters long",
                        f"a string built by an expression has at most {MAX_TEXT:,} characters")


def _ev(node, env):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        name = IN if node.id == _IN_ID else node.id
        if name in env:
            return env[name]
        if name == IN:
            raise ExprError("`in` has no input here",
                            "`in` is the input of a block (or of `layers:`, of a head's "
                            "`layers:`); variables and input shapes come before any input",
                            expected="`in` in the layers of a block, of the architecture "
                                     "or of a head")
        from archspec.errors import did_you_mean
        known = sorted(k for k in env if k != IN)
        raise ExprError(f"unknown variable '{name}'",
                        did_you_mean(name, env) or f"known: {', '.join(known) or 'none'}")
    if isinstance(node, ast.Attribute):
        base = _ev(node.value, env)
        if hasattr(base, "expr_attribute"):  # duck-typed: expr.py knows no shapes
            return base.expr_attribute(node.attr)
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        base, index = _ev(node.value, env), _ev(node.slice, env)
        if isinstance(base, (tuple, list)):
            if isinstance(index, bool) or not isinstance(index, int):
                raise ExprError(f"an index is an integer, not {index!r}",
                                "e.g. ${in.shape[0]}, or ${in.shape[-1]} for the last axis")
            if not -len(base) <= index < len(base):
                raise ExprError(f"index {index} is out of range for {len(base)} values "
                                f"{tuple(base)}", f"use 0 to {len(base) - 1}, or -1 for "
                                "the last", expected=f"an index from {-len(base)} to "
                                f"{len(base) - 1}", found=str(index))
            return base[index]
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _ev(node.left, env), _ev(node.right, env)
        if any(isinstance(v, (tuple, list)) for v in (left, right)):  # `in.shape * 10**9`
            raise ExprError("cannot evaluate: arithmetic on a shape",
                            "read one axis: ${in.shape[0]}, ${in.channels}")
        try:
            if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and \
                    abs(right) > MAX_POW:
                raise ExprError(f"exponent {right} is too large")
            _check_size(node.op, left, right)
            result = _BIN[type(node.op)](left, right)
        except ExprError:
            raise
        except (ZeroDivisionError, TypeError, OverflowError, ValueError) as exc:
            raise ExprError(f"cannot evaluate: {_why(exc)}") from None
        if isinstance(result, complex):  # (-8) ** 0.5
            raise ExprError(f"cannot evaluate: ({left!r}) ** {right!r} is not a real number")
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        v = _ev(node.operand, env)
        try:
            return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd)
                                                             else not v)
        except TypeError as exc:
            raise ExprError(f"cannot evaluate: {exc}") from None
    if isinstance(node, ast.Compare):
        left = _ev(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            if type(op) not in _CMP:
                break
            right = _ev(comp, env)
            try:
                if not _CMP[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise ExprError(f"cannot evaluate: {exc}") from None
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
        args = [_ev(a, env) for a in node.args]
        try:
            if node.func.id == "round" and len(args) == 2 and isinstance(args[1], int) \
                    and abs(args[1]) > MAX_BITS:
                raise ValueError(f"{args[1]} digits is too many")
            return _FUNCS[node.func.id](*args)
        except ExprError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExprError(f"cannot evaluate {node.func.id}(): {_why(exc)}") from None
    raise ExprError(f"'{_unparse(node)}' is not allowed in an expression",
                    "only arithmetic, comparisons, 'x if c else y' and "
                    + ", ".join(_FUNCS) + " are allowed")


def _why(exc: Exception) -> str:
    if isinstance(exc, OverflowError):
        return "the number is too large"
    return str(exc)
