"""Expansion: each item of a layer list (a layer, a block call, a sugar macro, each with
`repeat:`) becomes nodes of the flat graph, named, wired to their inputs and inferred as
they are added, so that later items see earlier shapes."""
from __future__ import annotations

import functools
import math
from dataclasses import replace

from archspec.errors import ErrorCollector, SpecErrors, describe, did_you_mean
from archspec.fmt import BYTES_PER_VALUE, fmt_bytes
from archspec.layers.base import REGISTRY
from archspec.spec.frame import Frame, Scope
from archspec.spec.graph import Graph, Node
from archspec.spec.expr import BLOCK_INDEX, IN
from archspec.spec.infer import infer
from archspec.spec.inshape import input_of
from archspec.spec.limits import MAX_DEPTH, MAX_EXPANSIONS, MAX_LAYERS, MAX_REPEAT
from archspec.spec.locate import validate
from archspec.spec.macros import COMMON, MACROS
from archspec.spec.refs import References
from archspec.spec.schema import Architecture
from archspec.spec.values import BAD, empty, located_map, subst
from archspec.spec.yaml_loader import YList, YMap


class Expander:
    def __init__(self, arch: Architecture, root: YMap, errors: ErrorCollector, graph: Graph):
        self.arch, self.root, self.errors, self.graph = arch, root, errors, graph
        self.refs = References(graph, errors)
        self.env: dict = {}    # the architecture's variables: every block starts from them
        self.expanded = 0      # layer and block instances visited, against MAX_EXPANSIONS
        self.instances: dict[str, int] = {}  # block -> its instances so far (`block_index`)
        # subst(value, env, node, loc, path): evaluate expressions, reporting to `errors`
        self.subst = functools.partial(subst, errors)

    # --- sequences and items -------------------------------------------------------------
    def sequence(self, items, frame: Frame, pos=None):
        """Expand a list of items in order; returns the id of the last output."""
        path, prev = frame.path, frame.prev
        if not isinstance(items, list):
            self.errors.add("expected a list of layers", getattr(items, "pos", None) or pos, path,
                            expected="a YAML list (lines starting with '- ')",
                            found=describe(items),
                            hint="a single layer is a list of one: [conv: {...}]"
                            if isinstance(items, (str, dict)) else None)
            return self.unknown(path, pos)
        for j, item in enumerate(items):
            pos = items.item_pos[j] if isinstance(items, YList) else None
            prev = self.item(item, pos, frame.at(f"{path}[{j}]", prev))
        return prev

    def _split(self, item, pos, path):
        """`- flatten`, `- relu`, `- conv: {...}`, `- dropout: 0.5` -> (key, value, node)."""
        if isinstance(item, str):
            return item, empty(pos), pos
        if isinstance(item, YMap) and len(item) == 1:
            key = next(iter(item))
            return key, item[key], item.val_pos[key]
        self.errors.add("a layer is a one-key mapping or a name", pos, path,
                        expected="e.g. `- conv: {maps: 64, kernel: 3}` or `- flatten`",
                        found=(f"a mapping with keys {', '.join(map(str, item))}"
                               if isinstance(item, dict) else describe(item)),
                        hint="indent the options under the layer kind" if isinstance(item, dict)
                        and len(item) > 1 else None)
        return None, None, pos

    def item(self, item, pos, frame: Frame):
        path = frame.path
        key, value, vpos = self._split(item, pos, path)
        if key is None:
            return self.unknown(path, pos)
        blocks = self.arch.blocks
        if key not in REGISTRY and key not in blocks and key not in MACROS:
            known = list(REGISTRY) + list(blocks) + list(MACROS)
            self.errors.add(f"unknown layer kind '{key}'", pos, path,
                            expected="a layer kind or a block: " + ", ".join(sorted(known)),
                            found=repr(key), hint=did_you_mean(key, known))
            return self.unknown(path, pos)
        value = self._options_map(key, value, vpos, path)
        if value is None:
            return self.unknown(path, pos)
        count = self._repeat(value, vpos, frame.env, path)
        if count > MAX_REPEAT:
            self._too_deep(key, value, vpos, frame, count)
            return frame.prev
        prev = frame.prev
        for i in range(count):
            self.expanded += 1
            if self.expanded > MAX_EXPANSIONS:
                self._too_many(f"more than {MAX_EXPANSIONS:,} layer and block instances",
                               pos, path, count)
            prev = self._expand_one(key, value, vpos, frame.repetition(i, count, prev))
            if len(self.graph.nodes) > MAX_LAYERS:
                self._too_many(f"more than {MAX_LAYERS:,} layers", pos, path, count)
        return prev

    def _too_many(self, what, pos, path, count):
        self.errors.add(f"the architecture expands to {what}", pos, path,
                        expected=f"at most {MAX_LAYERS:,} layers",
                        found=f"repeat: {count:,} here, inside other repeats",
                        hint="lower `repeat` or the block nesting")
        raise SpecErrors(self.errors.errors)

    def _expand_one(self, key, value, vpos, frame: Frame):
        if key in MACROS:
            return MACROS[key].expand(self, value, vpos, frame)
        if key in self.arch.blocks:
            return self._block(key, value, vpos, frame)
        return self._layer(key, value, vpos, frame)

    def _too_deep(self, key, value, vpos, frame: Frame, count):
        """Refuse a huge repeat with the memory it would take: expand one repetition on
        trial, measure it, undo it, and multiply."""
        scope = frame.scope
        nodes, n_err = dict(self.graph.nodes), len(self.errors.errors)
        names, counters = dict(scope.names), dict(scope.counters)
        trial = replace(frame, env={**frame.env, "i": 0}, i=0, count=2)  # path as written
        self._expand_one(key, value, vpos, trial)
        added = [n for k, n in self.graph.nodes.items() if k not in nodes]
        self.graph.nodes, scope.names, scope.counters = nodes, names, counters
        del self.errors.errors[n_err:]
        params = sum(n.params + n.state for n in added) * count
        acts = sum(math.prod(n.shape) for n in added if n.shape) * count
        layers = len(added) * count
        self.errors.add(f"repeat {count:,} is too deep: about {layers:,} layers, "
                        f"{params:,} parameters (~{fmt_bytes(params * BYTES_PER_VALUE)}) and "
                        f"~{fmt_bytes(acts * BYTES_PER_VALUE)} of activations per example",
                        value.val_pos["repeat"], frame.path, expected=f"at most {MAX_REPEAT:,}",
                        found=f"{count:,}", hint="nothing has been allocated; check the expression")

    def unknown(self, path, pos):
        """Stands in for a layer that could not be read, so that the layers after it are not
        checked against a shape it would not have had."""
        node_id = f"<{path}>"
        self.graph.nodes[node_id] = Node(node_id, "unknown", None, [], pos)
        return node_id

    def _options_map(self, key, value, vpos, path):
        if value is None:
            return empty(vpos)
        if isinstance(value, YMap):
            return value
        kind = REGISTRY.get(key)
        if kind is not None and kind.shorthand:
            return located_map({kind.shorthand: value}, vpos)
        sugar = MACROS.get(key)
        if sugar is not None and sugar.shorthand and isinstance(value, YList):
            return located_map({sugar.shorthand: value}, vpos)
        self.errors.add(f"options of '{key}' must be a mapping", vpos, path,
                        expected="e.g. {maps: 64, kernel: 3}" if key == "conv" else "a mapping",
                        found=repr(value),
                        hint=f"'{key}' has no one-value shorthand" if kind else None)
        return None

    def _repeat(self, value, vpos, env, path) -> int:
        if "repeat" not in value:
            return 1
        n = self.subst(value["repeat"], env, value, ("repeat",), path)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raw = value["repeat"]
            self.errors.add("repeat must be a non-negative integer", value.val_pos["repeat"], path,
                            expected="an integer >= 0",
                            found=describe(n) + (f" (from {raw})" if raw != n else ""),
                            hint="repeat: 0 leaves the layer out"
                            if isinstance(n, int) and not isinstance(n, bool) else None)
            return 0
        return n

    # --- layers, blocks and the nodes macros create ----------------------------------------
    def _layer(self, key, value, vpos, frame: Frame):
        kind, env, path = REGISTRY[key], frame.env, frame.path
        data = {k: self.subst(v, env, value, (k,), path) for k, v in value.items() if k != "repeat"}
        if any(v is BAD for v in data.values()):
            return self.unknown(path, vpos)
        name = self.refs.name(frame, data.get("name"), key, value, vpos)
        node_id = frame.scope.prefix + name
        opts = validate(kind.Options, data, value, self.errors, node_id, vpos, f"'{key}'")
        inputs = self.refs.inputs(frame, data.get("inputs"), value, vpos, node_id, kind)
        node = Node(node_id, key, opts, inputs or [], vpos)
        self.refs.add(node, frame.scope, name)
        if opts is not None and inputs:
            infer(self.graph, self.errors, node, kind, value)
        return node_id

    def _block(self, key, value, vpos, frame: Frame):
        path, scope, calls = frame.path, frame.scope, frame.calls
        if frame.depth >= MAX_DEPTH:
            self.errors.add(f"blocks nest deeper than {MAX_DEPTH} (does '{key}' use itself?)",
                            vpos, path, hint="a block must not call itself")
            return frame.prev
        if key in calls:
            loop = " -> ".join(calls[calls.index(key):] + (key,))
            self.errors.add(f"block '{key}' uses itself ({loop})", vpos, path,
                            expected="a block built from layers and other blocks",
                            found=repr(key), hint="blocks cannot recurse; use `repeat:` for depth")
            return self.unknown(path, vpos)
        block, bnode = self.arch.blocks[key], self.root["blocks"][key]
        args = {k: self.subst(v, frame.env, value, (k,), path)
                for k, v in value.items() if k not in COMMON}
        name = self.refs.name(frame, self.subst(value.get("name"), frame.env, value, ("name",),
                                                path) if "name" in value else None,
                              key, value, vpos)
        for arg in args:
            if arg not in block.params:
                self.errors.add(f"block '{key}' has no parameter '{arg}'",
                                value.key_pos[arg], scope.prefix + name,
                                expected=", ".join(block.params) or "no parameters",
                                found=repr(arg), hint=did_you_mean(arg, block.params))
        inner = scope.child(name)
        start = self.refs.inputs(frame, value.get("inputs"), value, vpos, scope.prefix + name,
                                 None)
        # `in` is the start's shape, known since nodes are inferred as they are added
        benv = {**self.env, IN: input_of(self.graph, start[0] if start else None),
                BLOCK_INDEX: self.instances.get(key, 0)}
        self.instances[key] = benv[BLOCK_INDEX] + 1
        pnode = bnode.get("params") or YMap()
        for p, default in block.params.items():
            benv[p] = args[p] if p in args else self.subst(default, benv, pnode, (p,), path)
        if start is None:
            return frame.prev
        inner.names["_in"] = start[0]
        body = frame.nested(inner, start[0], f"blocks.{key}", env=benv, calls=calls + (key,))
        last = self.sequence(bnode["layers"], body)
        scope.names[name] = last
        return last

    def synth(self, scope: Scope, kind_name, data, pos, local, inputs=None):
        """A node a macro creates (the add of a residual, a projection conv)."""
        kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
        node_id = scope.prefix + local
        if kind is None:
            self.errors.add(f"unknown layer kind {kind_name!r}", pos, node_id,
                            expected="a layer kind", found=describe(kind_name),
                            hint=did_you_mean(kind_name, REGISTRY))
            return node_id
        ins = inputs if inputs is not None else data["inputs"]
        ymap = located_map({k: v for k, v in data.items() if k != "inputs"}, pos)
        opts = validate(kind.Options, dict(ymap), ymap, self.errors, node_id, pos,
                        f"'{kind_name}'")
        node = Node(node_id, kind_name, opts, list(ins), pos)
        self.refs.add(node, scope, local)
        if opts is not None and all(i in self.graph.nodes for i in ins):
            infer(self.graph, self.errors, node, kind, ymap)
        return node_id

    def keys(self, value, allowed, what, path) -> bool:
        """Report every option of a macro that is not in `allowed`."""
        ok = True
        for k in value:
            if k not in allowed:
                self.errors.add(f"unknown option '{k}' for {what}", value.key_pos[k], path,
                                expected="one of: " + ", ".join(allowed), found=repr(k),
                                hint=did_you_mean(k, allowed))
                ok = False
        return ok
