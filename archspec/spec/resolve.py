"""Resolve a loaded architecture into a `Graph`: expand its blocks, repeats, variables and
sugar into a flat DAG (spec/expand.py, spec/macros.py), inferring every shape as nodes are
added (spec/infer.py), then check what only the whole graph shows (references, size), and
collect every error with its position."""
from __future__ import annotations

from archspec.errors import ErrorCollector, Pos, describe
from archspec.layers.base import kinds
from archspec.spec.expand import Expander
from archspec.spec.expr import IN
from archspec.spec.frame import Frame, Scope
from archspec.spec.graph import Graph
from archspec.spec.heads import add_heads
from archspec.spec.inputs import add_inputs, check_defaults, variables
from archspec.spec.inshape import top_input
from archspec.spec.limits import (MAX_ACTIVATIONS, MAX_DEPTH, MAX_EXPANSIONS,  # noqa: F401
                                  MAX_LAYERS, MAX_NAME, MAX_PARAMS, MAX_REPEAT, check_size)
from archspec.spec.locate import validate_lenient
from archspec.spec.macros import MACROS
from archspec.spec.schema import Architecture
from archspec.spec.yaml_loader import YMap, load_yaml_file, load_yaml_text

__all__ = ["resolve", "load_architecture", "load_architecture_text", "MAX_ACTIVATIONS",
           "MAX_NAME", "MAX_LAYERS", "MACROS"]


def _resolve_graph(arch: Architecture, root: YMap, errors: ErrorCollector,
                   input_shape: tuple | None) -> Graph:
    kinds()
    graph = Graph(arch.name, defaults=arch.defaults)
    ex = Expander(arch, root, errors, graph)
    check_defaults(arch, root, errors)
    ex.env = variables(arch, root, errors)
    graph.variables = dict(ex.env)
    ex.refs.collect_names(root)
    scope = Scope("")
    prev = add_inputs(arch, root, errors, graph, ex.env, scope, input_shape)
    env = {**ex.env, IN: top_input(graph, prev)}
    last = ex.sequence(root["layers"], Frame(scope, prev, env, "layers"))
    add_heads(ex, scope, last)
    ex.refs.check_deferred()
    check_size(graph, errors)
    return graph


# --- public API --------------------------------------------------------------------------

def resolve(root, errors: ErrorCollector | None = None, filename: str = "",
            input_shape: tuple | None = None) -> Graph:
    errors = errors or ErrorCollector()
    if not isinstance(root, YMap):
        errors.add("an architecture file is a YAML mapping", getattr(root, "pos", None)
                   or Pos(filename, 1, 1), "", expected="keys name, input, layers, ...",
                   found=_whole_file(root),
                   hint="put the layers under `layers:` next to `name:` and `input:`"
                   if isinstance(root, list) else None)
        errors.raise_if_any()
    arch, root = validate_lenient(Architecture, root, errors, "", "the architecture",
                                  optional=("description", "defaults", "heads"),
                                  per_entry=("heads",), placeholders={"name": "?"})
    if arch is None:
        errors.raise_if_any()
    graph = _resolve_graph(arch, root, errors, input_shape)
    errors.raise_if_any()
    graph.source = filename
    return graph


def _whole_file(root) -> str:
    """What a file that is not a mapping holds, without its text: a file that is one string
    is often not YAML at all (a key, an environment file) and must not reach a log."""
    if root is None:
        return "an empty file"
    if isinstance(root, list):
        return "a list"
    if isinstance(root, str):
        return f"one string of {len(root):,} characters (not shown)"
    return describe(root)


def load_architecture(path, input_shape: tuple | None = None) -> Graph:
    return resolve(load_yaml_file(path), filename=str(path), input_shape=input_shape)


def load_architecture_text(text: str, filename: str = "<string>",
                           input_shape: tuple | None = None) -> Graph:
    return resolve(load_yaml_text(text, filename), filename=filename, input_shape=input_shape)
