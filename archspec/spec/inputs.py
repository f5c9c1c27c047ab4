"""The top of an architecture before its layers: `defaults`, `variables` and the input
nodes (`input` or `inputs`), each checked where it is written."""
from __future__ import annotations

from archspec.errors import ErrorCollector, Pos
from archspec.fmt import fmt_dims
from archspec.layers.base import ShapeError
from archspec.spec.frame import Scope
from archspec.spec.graph import Graph, Node
from archspec.spec.locate import position
from archspec.spec.schema import Architecture
from archspec.spec.values import BAD, subst
from archspec.spec.yaml_loader import YMap


def check_defaults(arch: Architecture, root: YMap, errors: ErrorCollector) -> None:
    """`defaults` reach every dense and conv at build time: check them once, here."""
    from archspec.layers import activation
    from archspec.layers.init import check_init

    d, node = arch.defaults, root.get("defaults")
    for key, check in (("activation", activation.parse), ("init", check_init),
                       ("bias_init", check_init)):
        value = getattr(d, key)
        if value is None or not isinstance(node, YMap) or key not in node:
            continue
        try:
            check(value) if key == "activation" else check(value, key)
        except ShapeError as exc:
            errors.add(exc.message, node.val_pos[key], "defaults",
                       expected=exc.expected, found=exc.found or repr(value),
                       hint=exc.hint)


def variables(arch: Architecture, root: YMap, errors: ErrorCollector) -> dict:
    """The variables in order, each may use the ones before it."""
    env, node = {}, root.get("variables") or YMap()
    for key, value in arch.variables.items():
        env[key] = subst(errors, value, env, node, (key,), f"variables.{key}")
    return env


def add_inputs(arch: Architecture, root: YMap, errors: ErrorCollector, graph: Graph,
               env: dict, scope: Scope, input_shape: tuple | None):
    """Add the input nodes; returns the one the first layer reads (None for several)."""
    specs = dict(arch.inputs or {})
    node_of = {k: (root["inputs"], ("inputs", k)) for k in specs}
    if arch.input is not None:
        if specs:
            errors.add("give either `input` or `inputs`, not both",
                       root.key_pos["inputs"], "inputs",
                       expected="`input` or `inputs`", found="both",
                       hint="`inputs` names several inputs; `input` is one unnamed input")
        specs["input"] = arch.input
        node_of["input"] = (root, ("input",))
    if not specs:
        errors.add("the architecture has no input", root.pos, "",
                   expected="input: {shape: [height, width, channels]}",
                   found="no `input` or `inputs` key")
        return None
    for name, spec in specs.items():
        ynode, loc = node_of[name]
        shape = subst(errors, list(spec.shape), env, ynode, loc[-1:] + ("shape",), name)
        if input_shape is not None:
            if len(specs) > 1 and name == next(iter(specs)):
                errors.add("an input shape override needs a single input",
                           root.key_pos.get("inputs", root.pos), "inputs",
                           expected="one input", found=", ".join(specs))
            if isinstance(shape, list) and len(shape) != len(input_shape):
                given = ",".join(map(str, input_shape))
                errors.add("--input-shape changes the input's rank",
                           Pos.command_line(f"--input-shape {given}"), name,
                           expected=f"{len(shape)} axes, as the spec's "
                                    f"{fmt_dims(shape)} (without the batch axis)",
                           found=f"{len(input_shape)} axes",
                           hint=f"keep the channels: --input-shape {given},{shape[-1]}"
                           if len(input_shape) == len(shape) - 1 else
                           f"give {len(shape)} sizes, the last the channels")
            shape = list(input_shape)
        if isinstance(shape, list) and any(s is BAD for s in shape):
            shape = None  # the expression error says why
        elif not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool)
                                                   and s > 0 for s in shape)) or not shape:
            errors.add("input shape must be positive integers (without the batch axis)",
                       position(root, loc + ("shape",), root.pos), name,
                       expected="e.g. [224, 224, 3] or [64]", found=repr(shape),
                       hint="every axis needs at least one element; leave out the "
                            "batch axis")
            shape = None
        pos = position(root, loc, root.pos)
        node = Node(name, "input", spec, [], pos, tuple(shape) if shape else None, spec.dtype)
        if node.shape and len(node.shape) >= 2:
            node.rf, node.jump = (1,) * (len(node.shape) - 1), (1,) * (len(node.shape) - 1)
        graph.nodes[name] = graph.inputs[name] = node
        scope.names[name] = name
    return next(iter(specs)) if len(specs) == 1 else None
