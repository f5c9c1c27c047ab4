"""Sugar keys (`residual`, `branches`): macros that expand one item into several nodes.
Each is one function registered under its key with `@macro`; the expansion looks the key
up in `MACROS`, and lists the keys wherever it lists the layer kinds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from archspec.errors import describe, did_you_mean
from archspec.fmt import fmt_shape
from archspec.spec.frame import Frame
from archspec.spec.yaml_loader import YList, YMap

if TYPE_CHECKING:
    from archspec.spec.expand import Expander

COMMON = ("name", "inputs", "repeat")  # options every item takes
SHORTCUTS = ("auto", "identity", "projection")  # besides `none` and a list of layers


@dataclass(frozen=True)
class Macro:
    name: str
    expand: Callable  # (expander, options YMap, position, Frame) -> the id of its output
    shorthand: str | None = None  # the option a bare list of layers stands for


MACROS: dict[str, Macro] = {}


def macro(name: str, shorthand: str | None = None):
    """Register the decorated function as the expansion of the sugar key `name`."""
    def register(fn: Callable) -> Callable:
        if name in MACROS:
            raise ValueError(f"macro {name!r} is registered twice")
        MACROS[name] = Macro(name, fn, shorthand)
        return fn
    return register


def _open(ex: "Expander", value: YMap, vpos, frame: Frame, key: str):
    """The name, scope and input of a macro instance; None where an error stops it."""
    name = ex.refs.name(frame, ex.subst(value.get("name"), frame.env, value, ("name",),
                                        frame.path), key, value, vpos)
    inner = frame.scope.child(name)
    start = ex.refs.inputs(frame, value.get("inputs"), value, vpos, inner.prefix[:-1], None)
    return name, inner, start


@macro("residual")
def residual(ex: "Expander", value: YMap, vpos, frame: Frame):
    allowed = ("body", "shortcut", "projection", "activation", "drop_path") + COMMON
    if not ex.keys(value, allowed, "residual", frame.path):
        return frame.prev
    name, inner, start = _open(ex, value, vpos, frame, "residual")
    if start is None or "body" not in value:
        if "body" not in value:
            ex.errors.add("residual needs a `body`", vpos, frame.path,
                          expected="body: [layers...]", found="no body")
        return frame.prev
    body = ex.sequence(value["body"], frame.nested(inner, start[0], f"{frame.path}.body"),
                       value.val_pos["body"])
    short = _shortcut(ex, value, frame, inner, start[0], body)
    rate = ex.subst(value.get("drop_path"), frame.env, value, ("drop_path",), frame.path)
    if short is None:  # `shortcut: none`: the body alone, nothing to drop it to (timm's noskip)
        out = body
    else:
        if rate:  # stochastic depth: the body is dropped per example, the shortcut never
            body = ex.synth(inner, "drop_path", {"rate": rate}, value.val_pos["drop_path"],
                            "drop_path", inputs=[body])
        out = ex.synth(inner, "add", {"inputs": [short, body]},
                       value.val_pos.get("shortcut", value.pos), "add")
    act = ex.subst(value.get("activation"), frame.env, value, ("activation",), frame.path)
    if act is not None:
        out = ex.synth(inner, "activation", {"function": act},
                       value.val_pos["activation"], "activation", inputs=[out])
    frame.scope.names[name] = out
    return out


def _shortcut(ex: "Expander", value: YMap, frame: Frame, inner, start: str, body: str):
    """The path around the body: identity, a 1x1 projection where shapes differ, or layers;
    None for `none` (no path: the residual is its body)."""
    path, spec = frame.path, value.get("shortcut", "auto")
    if isinstance(spec, YList):
        return ex.sequence(spec, frame.nested(inner, start, f"{path}.shortcut"))
    spec = ex.subst(spec, frame.env, value, ("shortcut",), path)  # may be an expression
    if spec == "none":
        return None
    if spec not in SHORTCUTS:
        ex.errors.add(f"unknown shortcut {spec!r}", value.val_pos.get("shortcut"),
                      inner.prefix[:-1],
                      expected=", ".join(SHORTCUTS) + ", none or a list of layers",
                      found=repr(spec), hint=did_you_mean(str(spec), (*SHORTCUTS, "none")))
        return ex.unknown(f"{path}.shortcut", value.val_pos.get("shortcut"))
    src, dst = ex.graph.nodes[start], ex.graph.nodes.get(body)
    if spec == "identity" or dst is None or dst.shape is None or src.shape is None or (
            spec == "auto" and src.shape == dst.shape):
        return start
    if len(src.shape) < 2 or len(src.shape) != len(dst.shape):
        ex.errors.add("a projection shortcut needs feature maps of equal rank", value.pos,
                      inner.prefix[:-1], expected=fmt_shape(dst.shape),
                      found=fmt_shape(src.shape))
        return start
    strides = []
    for a, b in zip(src.shape[:-1], dst.shape[:-1]):
        stride = -(-a // b) if b else 0
        if b == 0 or -(-a // stride) != b:  # a 1x1 conv with this stride gives ceil(a/s)
            half = tuple(-(-n // 2) for n in src.shape[:-1])
            ex.errors.add("the body's spatial size is not a stride of its input",
                          value.pos, inner.prefix[:-1],
                          expected=f"the input's {fmt_shape(src.shape[:-1])} divided by a "
                                   f"stride, e.g. {fmt_shape(half)}",
                          found=fmt_shape(dst.shape[:-1]),
                          hint="give the body's convolutions `padding: same` so that "
                               "only their strides change the size")
            return ex.unknown(f"{path}.shortcut", value.pos)
        strides.append(stride)
    return _projection(ex, value, frame, inner, start, dst.shape[-1], strides)


def _projection(ex: "Expander", value: YMap, frame: Frame, inner, start, maps, strides):
    proj = ex.subst(value.get("projection") or {}, frame.env, value, ("projection",),
                    frame.path)
    if not isinstance(proj, dict):
        ex.errors.add("projection must be a mapping of conv options",
                      value.val_pos["projection"], inner.prefix[:-1],
                      expected="e.g. {norm: batchnorm} or {kernel: 1, bias: false}",
                      found=describe(proj))
        proj = {}
    proj = dict(proj)
    norm = proj.pop("norm", None)
    opts = {"maps": maps, "kernel": 1, "stride": strides, "activation": "linear", **proj}
    out = ex.synth(inner, "conv", opts, value.val_pos.get("projection", value.pos),
                   "projection", inputs=[start])
    if norm is not None:
        out = ex.synth(inner, norm, {}, value.val_pos["projection"], "projection_norm",
                       inputs=[out])
    return out


MERGES = ("concat", "add", "multiply")


@macro("branches", shorthand="paths")
def branches(ex: "Expander", value: YMap, vpos, frame: Frame):
    path = frame.path
    if not ex.keys(value, ("paths", "merge") + COMMON, "branches", path):
        return frame.prev
    name, inner, start = _open(ex, value, vpos, frame, "branches")
    paths = value.get("paths")
    if start is None or not isinstance(paths, YList) or not paths:
        if start is not None:
            ex.errors.add("branches needs a list of paths", vpos, path,
                          expected="paths: [[layers...], [layers...]]", found=repr(paths))
        return frame.prev
    outs = []
    for k, p in enumerate(paths):
        sub = frame.nested(inner.child(f"path{k + 1}"), start[0], f"{path}.paths[{k}]")
        outs.append(ex.sequence(p if p is not None else YList(), sub, paths.item_pos[k]))
    merge = value.get("merge", "concat")
    if merge not in MERGES:
        ex.errors.add(f"unknown merge '{merge}'", value.val_pos.get("merge"),
                      inner.prefix[:-1],
                      expected="concat, add or multiply", found=repr(merge),
                      hint=did_you_mean(merge, MERGES)
                      or "add sums the paths, multiply gates, concat stacks channels")
        return frame.prev
    out = ex.synth(inner, merge, {"inputs": outs}, value.pos, merge)
    frame.scope.names[name] = out
    return out
