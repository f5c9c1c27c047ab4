"""Expand a loaded architecture (blocks, repeats, variables, residual and branch sugar)
into a `Graph`, inferring every shape and collecting every error with its position."""
from __future__ import annotations

import math

from archspec.errors import ErrorCollector, Pos, SpecErrors, describe, did_you_mean
from archspec.fmt import BYTES_PER_VALUE, fmt_bytes, fmt_count, fmt_shape
from archspec.spec.graph import Graph, Head, Node
from archspec.layers.base import REGISTRY, ShapeError, kinds
from archspec.layers.init import check_init
from archspec.spec import expr
from archspec.spec.locate import position, validate, validate_lenient
from archspec.spec.schema import Architecture
from archspec.spec.yaml_loader import YList, YMap, load_yaml_file, load_yaml_text

MAX_REPEAT = 10_000
MAX_NODES = 100_000
MAX_EXPANSIONS = 2 * MAX_NODES  # layer and block instances visited while expanding
MAX_DEPTH = 64                 # nested block calls
MAX_PARAMS = 4_000_000_000     # 16 GB of float32 parameters
MAX_ACTIVATIONS = 4_000_000_000  # values of all layer outputs for one example: 16 GB
SUGAR = ("residual", "branches")
TOKEN_KINDS = ("embedding", "one_hot", "flatten", "reshape", "concat")  # may read int32 ids
COMMON = ("name", "inputs", "repeat")
MAX_NAME = 128                 # characters of one `name:` (checkpoint keys join the names
                               # of a node's path; orbax refuses a key of 64 KiB)


class Scope:
    """Names visible to `inputs:`. A block instance, residual or branch opens a child scope;
    lookups fall back to enclosing scopes, so a block may read a node of its caller."""

    def __init__(self, prefix: str, parent: "Scope | None" = None):
        self.prefix, self.parent, self.names, self.counters = prefix, parent, {}, {}

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        out, scope = [], self
        while scope is not None:
            out += list(scope.names)
            scope = scope.parent
        return out

    def auto_name(self, kind: str) -> str:
        sep = "_" if kind[-1:].isdigit() else ""  # relu6_1, not relu61
        while True:  # skip a name a layer or an input already has (`name: dense2`)
            self.counters[kind] = self.counters.get(kind, 0) + 1
            name = f"{kind}{sep}{self.counters[kind]}"
            if name not in self.names:
                return name


class Resolver:
    def __init__(self, arch: Architecture, root: YMap, errors: ErrorCollector,
                 input_shape: tuple | None = None):
        self.arch, self.root, self.errors = arch, root, errors
        self.input_shape = input_shape
        self.graph = Graph(arch.name, defaults=arch.defaults)
        self.positions: dict[str, Pos] = {}   # every named node, for "defined later" errors
        self.deferred: list = []              # unresolved references, checked at the end
        self.env = {}

    # --- entry -----------------------------------------------------------------------
    def run(self) -> Graph:
        kinds()
        self._check_defaults()
        self.env = self._variables()
        self.graph.variables = dict(self.env)
        self._collect_names(self.root.get("layers"))
        scope = Scope("")
        prev = self._inputs(scope)
        last = self._sequence(self.root["layers"], scope, prev, self.env, "layers", 0)
        self._heads(scope, last)
        self._check_deferred()
        self._check_size()
        return self.graph

    def _check_defaults(self):
        """`defaults` reach every dense and conv at build time: check them once, here."""
        from archspec.layers import activation
        from archspec.layers.init import check_init

        d, node = self.arch.defaults, self.root.get("defaults")
        for key, check in (("activation", activation.parse), ("init", check_init),
                           ("bias_init", check_init)):
            value = getattr(d, key)
            if value is None or not isinstance(node, YMap) or key not in node:
                continue
            try:
                check(value) if key == "activation" else check(value, key)
            except ShapeError as exc:
                self.errors.add(exc.message, node.val_pos[key], "defaults",
                                expected=exc.expected, found=exc.found or repr(value),
                                hint=exc.hint)

    def _variables(self) -> dict:
        env, node = {}, self.root.get("variables") or YMap()
        for key, value in self.arch.variables.items():
            env[key] = self._subst(value, env, node, (key,), f"variables.{key}")
        return env

    def _inputs(self, scope: Scope):
        specs = dict(self.arch.inputs or {})
        node_of = {k: (self.root["inputs"], ("inputs", k)) for k in specs}
        if self.arch.input is not None:
            if specs:
                self.errors.add("give either `input` or `inputs`, not both",
                                self.root.key_pos["inputs"], "inputs",
                                expected="`input` or `inputs`", found="both",
                                hint="`inputs` names several inputs; `input` is one unnamed input")
            specs["input"] = self.arch.input
            node_of["input"] = (self.root, ("input",))
        if not specs:
            self.errors.add("the architecture has no input", self.root.pos, "",
                            expected="input: {shape: [height, width, channels]}",
                            found="no `input` or `inputs` key")
            return None
        for name, spec in specs.items():
            ynode, loc = node_of[name]
            ymap = ynode if name == "input" else ynode
            shape = self._subst(list(spec.shape), self.env, ymap, loc[-1:] + ("shape",), name)
            if self.input_shape is not None:
                if len(specs) > 1 and name == next(iter(specs)):
                    self.errors.add("an input shape override needs a single input",
                                    self.root.key_pos.get("inputs", self.root.pos), "inputs",
                                    expected="one input", found=", ".join(specs))
                shape = list(self.input_shape)
            if isinstance(shape, list) and any(s is _BAD for s in shape):
                shape = None  # the expression error says why
            elif not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool)
                                                       and s > 0 for s in shape)) or not shape:
                self.errors.add("input shape must be positive integers (without the batch axis)",
                                position(self.root, loc + ("shape",), self.root.pos), name,
                                expected="e.g. [224, 224, 3] or [64]", found=repr(shape),
                                hint="every axis needs at least one element; leave out the "
                                     "batch axis")
                shape = None
            pos = position(self.root, loc, self.root.pos)
            node = Node(name, "input", spec, [], pos, tuple(shape) if shape else None, spec.dtype)
            if node.shape and len(node.shape) >= 2:
                node.rf, node.jump = (1,) * (len(node.shape) - 1), (1,) * (len(node.shape) - 1)
            self.graph.nodes[name] = self.graph.inputs[name] = node
            scope.names[name] = name
        return next(iter(specs)) if len(specs) == 1 else None

    # --- sequences and items -------------------------------------------------------------
    def _sequence(self, items, scope, prev, env, path, depth, pos=None):
        if not isinstance(items, list):
            self.errors.add("expected a list of layers", getattr(items, "pos", None) or pos, path,
                            expected="a YAML list (lines starting with '- ')",
                            found=describe(items),
                            hint="a single layer is a list of one: [conv: {...}]"
                            if isinstance(items, (str, dict)) else None)
            return self._unknown(path, pos)
        for j, item in enumerate(items):
            pos = items.item_pos[j] if isinstance(items, YList) else None
            prev = self._item(item, pos, scope, prev, env, f"{path}[{j}]", depth)
        return prev

    def _split(self, item, pos, path):
        """`- flatten`, `- relu`, `- conv: {...}`, `- dropout: 0.5` -> (key, value, node)."""
        if isinstance(item, str):
            return item, _empty(pos), pos
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

    def _item(self, item, pos, scope, prev, env, path, depth):
        key, value, vpos = self._split(item, pos, path)
        if key is None:
            return self._unknown(path, pos)
        blocks = self.arch.blocks
        if key not in REGISTRY and key not in blocks and key not in SUGAR:
            self.errors.add(f"unknown layer kind '{key}'", pos, path,
                            expected="a layer kind or a block: "
                            + ", ".join(sorted(list(REGISTRY) + list(blocks) + list(SUGAR))),
                            found=repr(key),
                            hint=did_you_mean(key, list(REGISTRY) + list(blocks) + list(SUGAR)))
            return self._unknown(path, pos)
        value = self._options_map(key, value, vpos, path)
        if value is None:
            return self._unknown(path, pos)
        count = self._repeat(value, vpos, env, path)
        if count > MAX_REPEAT:
            self._too_deep(key, value, vpos, scope, prev, env, path, depth, count)
            return prev
        for i in range(count):
            self._expanded = getattr(self, "_expanded", 0) + 1
            if self._expanded > MAX_EXPANSIONS:
                self.errors.add(f"the architecture expands to more than {MAX_EXPANSIONS:,} "
                                "layer and block instances", pos, path,
                                expected=f"at most {MAX_NODES:,} layers",
                                found=f"repeat: {count:,} here, inside other repeats",
                                hint="lower `repeat` or the block nesting")
                raise SpecErrors(self.errors.errors)
            env_i = {**env, "i": i}
            ipath = f"{path}" if count == 1 else f"{path}#{i}"
            prev = self._expand_one(key, value, vpos, scope, prev, env_i, ipath, depth, i, count)
            if len(self.graph.nodes) > MAX_NODES:
                self.errors.add(f"the architecture expands to more than {MAX_NODES:,} layers",
                                pos, path, expected=f"at most {MAX_NODES:,} layers",
                                found=f"repeat: {count:,} here, inside other repeats",
                                hint="lower `repeat` or the block nesting")
                raise SpecErrors(self.errors.errors)
        return prev

    def _expand_one(self, key, value, vpos, scope, prev, env, path, depth, i, count):
        if key in SUGAR:
            return getattr(self, "_" + key)(value, vpos, scope, prev, env, path, depth, i, count)
        if key in self.arch.blocks:
            return self._block(key, value, vpos, scope, prev, env, path, depth, i, count)
        return self._layer(key, value, vpos, scope, prev, env, path, i, count)

    def _too_deep(self, key, value, vpos, scope, prev, env, path, depth, count):
        """Refuse a huge repeat with the memory it would take: expand one repetition on
        trial, measure it, undo it, and multiply."""
        nodes, n_err = dict(self.graph.nodes), len(self.errors.errors)
        names, counters = dict(scope.names), dict(scope.counters)
        self._expand_one(key, value, vpos, scope, prev, {**env, "i": 0}, path, depth, 0, 2)
        added = [n for k, n in self.graph.nodes.items() if k not in nodes]
        self.graph.nodes, scope.names, scope.counters = nodes, names, counters
        del self.errors.errors[n_err:]
        params = sum(n.params + n.state for n in added) * count
        acts = sum(math.prod(n.shape) for n in added if n.shape) * count
        layers = len(added) * count
        self.errors.add(f"repeat {count:,} is too deep: about {layers:,} layers, "
                        f"{params:,} parameters (~{fmt_bytes(params * BYTES_PER_VALUE)}) and "
                        f"~{fmt_bytes(acts * BYTES_PER_VALUE)} of activations per example",
                        value.val_pos["repeat"], path, expected=f"at most {MAX_REPEAT:,}",
                        found=f"{count:,}", hint="nothing has been allocated; check the expression")

    def _unknown(self, path, pos):
        """Stands in for a layer that could not be read, so that the layers after it are not
        checked against a shape it would not have had."""
        node_id = f"<{path}>"
        self.graph.nodes[node_id] = Node(node_id, "unknown", None, [], pos)
        return node_id

    def _options_map(self, key, value, vpos, path):
        if value is None:
            return _empty(vpos)
        if isinstance(value, YMap):
            return value
        kind = REGISTRY.get(key)
        if kind is not None and kind.shorthand:
            m = YMap({kind.shorthand: value})
            m.pos, m.key_pos, m.val_pos = vpos, {kind.shorthand: vpos}, {kind.shorthand: vpos}
            return m
        if key == "branches" and isinstance(value, YList):
            m = YMap({"paths": value})
            m.pos, m.key_pos, m.val_pos = vpos, {"paths": vpos}, {"paths": vpos}
            return m
        self.errors.add(f"options of '{key}' must be a mapping", vpos, path,
                        expected="e.g. {maps: 64, kernel: 3}" if key == "conv" else "a mapping",
                        found=repr(value),
                        hint=f"'{key}' has no one-value shorthand" if kind else None)
        return None

    def _repeat(self, value, vpos, env, path) -> int:
        if "repeat" not in value:
            return 1
        n = self._subst(value["repeat"], env, value, ("repeat",), path)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raw = value["repeat"]
            self.errors.add("repeat must be a non-negative integer", value.val_pos["repeat"], path,
                            expected="an integer >= 0",
                            found=describe(n) + (f" (from {raw})" if raw != n else ""),
                            hint="repeat: 0 leaves the layer out"
                            if isinstance(n, int) and not isinstance(n, bool) else None)
            return 0
        return n

    # --- plain layers --------------------------------------------------------------------
    def _layer(self, key, value, vpos, scope, prev, env, path, i, count):
        kind = REGISTRY[key]
        data = {k: self._subst(v, env, value, (k,), path) for k, v in value.items() if k != "repeat"}
        if any(v is _BAD for v in data.values()):
            return self._unknown(path, vpos)
        name = self._name(scope, data.get("name"), key, i, count, value, vpos, path)
        node_id = scope.prefix + name
        opts = validate(kind.Options, data, value, self.errors, node_id, vpos, f"'{key}'")
        inputs = self._refs(data.get("inputs"), scope, prev, value, vpos, node_id, kind)
        node = Node(node_id, key, opts, inputs or [], vpos)
        self._add(node, scope, name)
        if opts is not None and inputs:
            self._infer(node, kind, value)
        return node_id

    def _name(self, scope, given, key, i, count, value, vpos, path):
        if given is None:
            return scope.auto_name(key)
        if not isinstance(given, str) or not given or "." in given or given.startswith("_"):
            self.errors.add("a name is a word without dots", value.val_pos.get("name", vpos), path,
                            expected="e.g. conv1 or stage2", found=repr(given))
            return scope.auto_name(key)
        if len(given) > MAX_NAME:
            self.errors.add(f"a name is at most {MAX_NAME} characters",
                            value.val_pos.get("name", vpos), path,
                            expected=f"at most {MAX_NAME} characters",
                            found=f"{given[:20]!r}... ({len(given):,} characters)",
                            hint="names make up node paths, summary rows and checkpoint keys: "
                                 "use a short word")
            return scope.auto_name(key)
        if count > 1 and "$" not in str(value.get("name")):
            given = f"{given}_{i + 1}"
        if given in scope.names:
            first = self.graph.nodes.get(scope.names[given])
            line = f" (first on line {first.pos.line})" if first and first.pos else ""
            self.errors.add(f"name '{given}' is used twice in the same block{line}",
                            value.val_pos.get("name", vpos), path,
                            expected="a name not used before in this block", found=repr(given),
                            hint="names must be unique within a block; use ${i} in repeated names")
            return scope.auto_name(key)
        return given

    def _add(self, node, scope, local):
        first = self.graph.nodes.get(node.id)
        if first is not None:  # a layer named like a node the sugar creates (`name: add`)
            line = f" on line {node.pos.line}" if node.pos else ""
            self.errors.add(f"name '{local}' is taken by a node archspec creates{line}",
                            first.pos or node.pos, first.id,
                            expected="a name used once in this block",
                            found=repr(local),
                            hint="a residual names its nodes add, activation, projection and "
                                 "projection_norm, branches their merge concat, add or "
                                 "multiply: give the layer another name")
            node.id = f"{node.id}#{len(self.graph.nodes)}"  # keep both; the error stops here
        self.graph.nodes[node.id] = node
        scope.names[local] = node.id

    def _refs(self, given, scope, prev, value, vpos, node_id, kind):
        n_in = kind.n_inputs if kind else 1
        if given is None:
            if n_in is None:
                self.errors.add(f"'{kind.kind}' merges several nodes and needs `inputs:`", vpos,
                                node_id, expected="inputs: [a, b]", found="no inputs",
                                hint="name the layers to merge with `name:` and list them here")
                return None
            if prev is None:
                if not self.graph.inputs:
                    return None  # "the architecture has no input" says it once
                self.errors.add("this layer has no input", vpos, node_id,
                                expected="`inputs:` naming one of the inputs",
                                found="several inputs and no `inputs:`"
                                if len(self.graph.inputs) > 1 else "nothing before it",
                                hint="add `inputs:` with one of: " + ", ".join(self.graph.inputs))
                return None
            return [prev]
        names = [given] if isinstance(given, str) else list(given) if isinstance(
            given, list) else [given]
        pos = value.val_pos.get("inputs", vpos) if isinstance(value, YMap) else vpos
        if not all(isinstance(n, str) for n in names):
            if kind is None:  # a layer's `inputs` was checked with its other options
                self.errors.add("inputs must be layer names", pos, node_id,
                                expected="a name or a list of names", found=describe(given))
            return None
        if n_in is None and len(names) < 2:
            self.errors.add(f"'{kind.kind}' needs at least two inputs", pos, node_id,
                            expected="inputs: [a, b]", found=repr(names),
                            hint="a merge combines two or more layers: give each a `name:` "
                                 "and list them all here")
            return None
        if n_in == 1 and len(names) != 1:
            what = f"'{kind.kind}'" if kind else "a block, residual or branches"  # sugar: None
            self.errors.add(f"{what} takes one input", pos, node_id,
                            expected="one name", found=repr(names),
                            hint="merge them first with add or concat")
            return None
        out = []
        for ref in names:
            target = scope.lookup(ref) if isinstance(ref, str) else None
            if target is None and isinstance(ref, str) and ref in self.graph.nodes:
                target = ref  # a full dotted path into a block instance
            if target is None:
                self.deferred.append((ref, pos, node_id, scope.visible()))
                return None
            out.append(target)
        return out

    def _infer(self, node: Node, kind, value):
        parents = [self.graph.nodes[i] for i in node.inputs]
        if any(p.shape is None for p in parents):
            return  # an earlier error; do not cascade
        shapes, dtypes = [p.shape for p in parents], [p.dtype for p in parents]
        try:
            tokens = [p for p in parents if p.dtype.startswith("int")]
            if tokens and (kind.kind not in TOKEN_KINDS or len(tokens) < len(parents)):
                raise ShapeError(f"'{kind.kind}' reads float values, but {tokens[0].id} holds "
                                 f"{tokens[0].dtype} token ids", expected="a float32 input",
                                 found=f"{tokens[0].id}: {tokens[0].dtype} "
                                       f"{fmt_shape(tokens[0].shape)}",
                                 hint="token ids go through an `embedding` (or `one_hot`) "
                                      "first; only flatten, reshape and concat keep them",
                                 field="inputs")
            for field in ("init", "bias_init"):  # every kind's initialisers, checked once
                check_init(getattr(node.opts, field, None), field)
            node.shape = tuple(kind.out_shape(node.opts, shapes, dtypes))
            node.dtype = kind.out_dtype(node.opts, dtypes)
            node.params, node.state = kind.params(node.opts, shapes, node.shape, self.arch.defaults)
            node.macs = kind.macs(node.opts, shapes, node.shape)
            node.rf, node.jump = _receptive(kind, node, parents, shapes)
        except ShapeError as exc:
            pos = value.val_pos.get(exc.field, node.pos) if isinstance(value, YMap) else node.pos
            inputs = ", ".join(f"{p.id} {fmt_shape(p.shape)}" for p in parents)
            self.errors.add(exc.message, pos, f"{node.id} (input: {inputs})",
                            expected=exc.expected, found=exc.found, hint=exc.hint)
            node.shape = None

    # --- blocks and sugar ------------------------------------------------------------------
    def _block(self, key, value, vpos, scope, prev, env, path, depth, i, count):
        if depth >= MAX_DEPTH:
            self.errors.add(f"blocks nest deeper than {MAX_DEPTH} (does '{key}' use itself?)",
                            vpos, path, hint="a block must not call itself")
            return prev
        calls = getattr(self, "_calls", [])
        if key in calls:
            loop = " -> ".join(calls[calls.index(key):] + [key])
            self.errors.add(f"block '{key}' uses itself ({loop})", vpos, path,
                            expected="a block built from layers and other blocks",
                            found=repr(key), hint="blocks cannot recurse; use `repeat:` for depth")
            return self._unknown(path, vpos)
        block = self.arch.blocks[key]
        bnode = self.root["blocks"][key]
        args = {k: self._subst(v, env, value, (k,), path)
                for k, v in value.items() if k not in COMMON}
        name = self._name(scope, self._subst(value.get("name"), env, value, ("name",), path)
                          if "name" in value else None, key, i, count, value, vpos, path)
        for arg in args:
            if arg not in block.params:
                self.errors.add(f"block '{key}' has no parameter '{arg}'",
                                value.key_pos[arg], scope.prefix + name,
                                expected=", ".join(block.params) or "no parameters",
                                found=repr(arg), hint=did_you_mean(arg, block.params))
        inner = Scope(scope.prefix + name + ".", scope)
        benv = {**self.env}
        pnode = bnode.get("params") or YMap()
        for p, default in block.params.items():
            benv[p] = args[p] if p in args else self._subst(default, benv, pnode, (p,), path)
        start = self._refs(value.get("inputs"), scope, prev, value, vpos, scope.prefix + name, None)
        if start is None:
            return prev
        inner.names["_in"] = start[0]
        self._calls = calls + [key]
        try:
            last = self._sequence(bnode["layers"], inner, start[0], benv, f"blocks.{key}",
                                  depth + 1)
        finally:
            self._calls = calls
        scope.names[name] = last
        return last

    def _residual(self, value, vpos, scope, prev, env, path, depth, i, count):
        allowed = ("body", "shortcut", "projection", "activation") + COMMON
        if not self._keys(value, allowed, "residual", path):
            return prev
        name = self._name(scope, self._subst(value.get("name"), env, value, ("name",), path),
                          "residual", i, count, value, vpos, path)
        inner = Scope(scope.prefix + name + ".", scope)
        start = self._refs(value.get("inputs"), scope, prev, value, vpos, inner.prefix[:-1], None)
        if start is None or "body" not in value:
            if "body" not in value:
                self.errors.add("residual needs a `body`", vpos, path,
                                expected="body: [layers...]", found="no body")
            return prev
        body = self._sequence(value["body"], inner, start[0], env, f"{path}.body", depth + 1,
                              value.val_pos["body"])
        short = self._shortcut(value, inner, start[0], body, env, path, depth)
        out = self._synth(inner, "add", {"inputs": [short, body]},
                          value.val_pos.get("shortcut", value.pos), "add")
        act = self._subst(value.get("activation"), env, value, ("activation",), path)
        if act is not None:
            out = self._synth(inner, "activation", {"function": act},
                              value.val_pos["activation"], "activation", inputs=[out])
        scope.names[name] = out
        return out

    def _shortcut(self, value, inner, start, body, env, path, depth):
        spec = value.get("shortcut", "auto")
        if isinstance(spec, YList):
            return self._sequence(spec, inner, start, env, f"{path}.shortcut", depth + 1)
        if spec not in ("auto", "identity", "projection"):
            self.errors.add(f"unknown shortcut {spec!r}", value.val_pos.get("shortcut"),
                            inner.prefix[:-1],
                            expected="auto, identity, projection or a list of layers",
                            found=repr(spec),
                            hint=did_you_mean(spec, ("auto", "identity", "projection")))
            return self._unknown(f"{path}.shortcut", value.val_pos.get("shortcut"))
        src, dst = self.graph.nodes[start], self.graph.nodes.get(body)
        if spec == "identity" or dst is None or dst.shape is None or src.shape is None or (
                spec == "auto" and src.shape == dst.shape):
            return start
        if len(src.shape) < 2 or len(src.shape) != len(dst.shape):
            self.errors.add("a projection shortcut needs feature maps of equal rank", value.pos,
                            inner.prefix[:-1], expected=fmt_shape(dst.shape),
                            found=fmt_shape(src.shape))
            return start
        strides = []
        for a, b in zip(src.shape[:-1], dst.shape[:-1]):
            stride = -(-a // b) if b else 0
            if b == 0 or -(-a // stride) != b:  # a 1x1 conv with this stride gives ceil(a/s)
                half = tuple(-(-n // 2) for n in src.shape[:-1])
                self.errors.add("the body's spatial size is not a stride of its input",
                                value.pos, inner.prefix[:-1],
                                expected=f"the input's {fmt_shape(src.shape[:-1])} divided by a "
                                         f"stride, e.g. {fmt_shape(half)}",
                                found=fmt_shape(dst.shape[:-1]),
                                hint="give the body's convolutions `padding: same` so that "
                                     "only their strides change the size")
                return self._unknown(f"{path}.shortcut", value.pos)
            strides.append(stride)
        proj = self._subst(value.get("projection") or {}, env, value, ("projection",), path)
        if not isinstance(proj, dict):
            self.errors.add("projection must be a mapping of conv options",
                            value.val_pos["projection"], inner.prefix[:-1],
                            expected="e.g. {norm: batchnorm} or {kernel: 1, bias: false}",
                            found=describe(proj))
            proj = {}
        proj = dict(proj)
        norm = proj.pop("norm", None)
        opts = {"maps": dst.shape[-1], "kernel": 1, "stride": strides, "activation": "linear",
                **proj}
        out = self._synth(inner, "conv", opts, value.val_pos.get("projection", value.pos),
                          "projection", inputs=[start])
        if norm is not None:
            out = self._synth(inner, norm, {}, value.val_pos["projection"], "projection_norm",
                              inputs=[out])
        return out

    def _branches(self, value, vpos, scope, prev, env, path, depth, i, count):
        if not self._keys(value, ("paths", "merge") + COMMON, "branches", path):
            return prev
        name = self._name(scope, self._subst(value.get("name"), env, value, ("name",), path),
                          "branches", i, count, value, vpos, path)
        inner = Scope(scope.prefix + name + ".", scope)
        start = self._refs(value.get("inputs"), scope, prev, value, vpos, inner.prefix[:-1], None)
        paths = value.get("paths")
        if start is None or not isinstance(paths, YList) or not paths:
            if start is not None:
                self.errors.add("branches needs a list of paths", vpos, path,
                                expected="paths: [[layers...], [layers...]]", found=repr(paths))
            return prev
        outs = []
        for k, p in enumerate(paths):
            pscope = Scope(inner.prefix + f"path{k + 1}.", inner)
            outs.append(self._sequence(p if p is not None else YList(), pscope, start[0], env,
                                       f"{path}.paths[{k}]", depth + 1, paths.item_pos[k]))
        merge = value.get("merge", "concat")
        if merge not in ("concat", "add", "multiply"):
            self.errors.add(f"unknown merge '{merge}'", value.val_pos.get("merge"),
                            inner.prefix[:-1],
                            expected="concat, add or multiply", found=repr(merge),
                            hint=did_you_mean(merge, ("concat", "add", "multiply"))
                            or "add sums the paths, multiply gates, concat stacks channels")
            return prev
        out = self._synth(inner, merge, {"inputs": outs}, value.pos, merge)
        scope.names[name] = out
        return out

    def _synth(self, scope, kind_name, data, pos, local, inputs=None):
        """A node the sugar creates (the add of a residual, a projection conv)."""
        kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
        node_id = scope.prefix + local
        if kind is None:
            self.errors.add(f"unknown layer kind {kind_name!r}", pos, node_id,
                            expected="a layer kind", found=describe(kind_name),
                            hint=did_you_mean(kind_name, REGISTRY))
            return node_id
        ins = inputs if inputs is not None else data["inputs"]
        data = {k: v for k, v in data.items() if k != "inputs"}
        ymap = YMap(data)
        ymap.pos, ymap.key_pos, ymap.val_pos = pos, {k: pos for k in data}, {k: pos for k in data}
        opts = validate(kind.Options, data, ymap, self.errors, node_id, pos, f"'{kind_name}'")
        node = Node(node_id, kind_name, opts, list(ins), pos)
        self._add(node, scope, local)
        if opts is not None and all(i in self.graph.nodes for i in ins):
            self._infer(node, kind, ymap)
        return node_id

    def _keys(self, value, allowed, what, path) -> bool:
        ok = True
        for k in value:
            if k not in allowed:
                self.errors.add(f"unknown option '{k}' for {what}", value.key_pos[k], path,
                                expected="one of: " + ", ".join(allowed), found=repr(k),
                                hint=did_you_mean(k, allowed))
                ok = False
        return ok

    # --- heads -------------------------------------------------------------------------
    def _heads(self, scope, last):
        heads = self.arch.heads
        if heads is None:
            if last is not None:
                node = self.graph.nodes[last]
                self.graph.heads["output"] = Head("output", last, "linear", 1.0, node.shape,
                                                  node.pos)
            return
        hnode = self.root["heads"]
        for name, head in heads.items():
            ynode = hnode[name]
            if len(name) > MAX_NAME:  # a head's layers live under its name
                self.errors.add(f"a head name is at most {MAX_NAME} characters",
                                hnode.key_pos[name], "heads", expected=f"at most {MAX_NAME} "
                                "characters", found=f"{name[:20]!r}... ({len(name):,} characters)",
                                hint="a head's name prefixes its layers' paths and checkpoint "
                                     "keys: use a short word")
                continue
            src = last
            if head.from_ is not None:
                src = scope.lookup(head.from_) or (head.from_ if head.from_ in self.graph.nodes
                                                   else None)
                if src is None:
                    self.errors.add(f"head '{name}' reads unknown node '{head.from_}'",
                                    ynode.val_pos["from"], f"heads.{name}",
                                    expected="a named layer", found=repr(head.from_),
                                    hint=did_you_mean(head.from_, scope.visible()))
                    continue
            inner = Scope(f"{name}.", scope) if head.layers else scope
            out = self._sequence(ynode.get("layers", YList()), inner, src, self.env,
                                 f"heads.{name}.layers", 1) if head.layers else src
            node = self.graph.nodes.get(out)
            self.graph.heads[name] = Head(name, out, head.output, head.loss_weight,
                                          node.shape if node else None,
                                          ynode.val_pos.get("output", hnode.key_pos[name]))

    # --- final checks ----------------------------------------------------------------------
    def _collect_names(self, items):
        """Every `name:` in the file, so a reference to a later node can say so."""
        def walk(x):
            if isinstance(x, YMap):
                if isinstance(x.get("name"), str):
                    self.positions.setdefault(x["name"], x.val_pos["name"])
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(self.root)

    def _check_deferred(self):
        for ref, pos, node_id, visible in self.deferred:
            if not isinstance(ref, str):
                self.errors.add("inputs must be names", pos, node_id, found=repr(ref))
            elif ref in self.positions and ref != node_id.rsplit(".", 1)[-1]:
                self.errors.add(f"'{ref}' is defined later (line {self.positions[ref].line}); "
                                "a layer can only read earlier layers", pos, node_id,
                                expected="a layer above this one", found=repr(ref),
                                hint="the graph must be acyclic: move this layer below "
                                     f"'{ref}' or read another node")
            elif ref == node_id.rsplit(".", 1)[-1]:
                self.errors.add(f"layer '{ref}' reads itself (a cycle)", pos, node_id,
                                expected="an earlier layer", found=repr(ref),
                                hint="the graph must be acyclic; to apply a layer several "
                                     "times use `repeat:`")
            else:
                self.errors.add(f"unknown node '{ref}' in inputs", pos, node_id,
                                expected="a named earlier layer or input", found=repr(ref),
                                hint=did_you_mean(ref, visible)
                                or f"visible here: {', '.join(visible[-8:])}")

    def _check_size(self):
        total = self.graph.total("params") + self.graph.total("state")
        if total > MAX_PARAMS:
            biggest = max(self.graph.layers, key=lambda n: n.params)
            self.errors.add(f"the model has {fmt_count(total)} parameters "
                            f"(~{fmt_bytes(total * BYTES_PER_VALUE)} in float32); refusing to build it",
                            biggest.pos, biggest.id,
                            expected=f"at most {MAX_PARAMS:,} parameters",
                            found=f"{fmt_count(biggest.params)} in this layer alone",
                            hint="check units/maps; nothing has been allocated")
            return
        sizes = {n.id: _elements(n.shape) for n in self.graph.nodes.values()}
        values = sum(sizes.values())
        if values > MAX_ACTIVATIONS:
            biggest = max(self.graph.nodes.values(), key=lambda n: sizes[n.id])
            self.errors.add(f"one example's layer outputs hold {fmt_count(values)} values "
                            f"(~{fmt_bytes(values * BYTES_PER_VALUE)} in float32); refusing to build it",
                            biggest.pos, biggest.id,
                            expected=f"at most {MAX_ACTIVATIONS:,} values per example",
                            found=f"{fmt_count(sizes[biggest.id])} in this layer's output "
                                  f"{fmt_shape(biggest.shape)} alone",
                            hint="check maps, units and the input shape, or downsample "
                                 "earlier; nothing has been allocated")

    def _subst(self, value, env, node, loc, path):
        """Evaluate `$var` / `${expr}` anywhere inside a value."""
        if isinstance(value, str) and expr.is_expr(value):
            try:
                return expr.evaluate(value, env)
            except expr.ExprError as exc:
                names = ", ".join(sorted(k for k in env if isinstance(k, str))) or "none"
                self.errors.add(str(exc), position(node, loc, getattr(node, "pos", None)), path,
                                expected=f"arithmetic on numbers and variables ({names})",
                                found=repr(value) if len(value) <= 200 else
                                f"{value[:80]!r}... ({len(value):,} characters)", hint=exc.hint)
                return _BAD
        if isinstance(value, dict):
            return {k: self._subst(v, env, value, (k,), path) if isinstance(value, YMap)
                    else self._subst(v, env, node, loc, path) for k, v in value.items()}
        if isinstance(value, list):
            return [self._subst(v, env, value if isinstance(value, YList) else node,
                                (k,) if isinstance(value, YList) else loc, path)
                    for k, v in enumerate(value)]
        return value


def _elements(shape) -> int:
    n = 1
    for s in shape or (0,):
        n *= s
    return n


def _empty(pos) -> YMap:
    """The options of `- flatten` or `- conv:`: none, located at the item."""
    m = YMap()
    m.pos, m.key_pos, m.val_pos = pos, {}, {}
    return m


class _Bad:
    def __repr__(self):
        return "<invalid expression>"


_BAD = _Bad()


def _receptive(kind, node, parents, shapes):
    if len(node.shape) < 2 or any(p.rf is None for p in parents):
        return None, None
    rf = tuple(max(p.rf[a] for p in parents) for a in range(len(parents[0].rf)))
    jump = tuple(max(p.jump[a] for p in parents) for a in range(len(parents[0].jump)))
    win = kind.window(node.opts, shapes) if kind.spatial else None
    if kind.spatial and win is None:
        return None, None  # global / adaptive pooling sees everything
    if win:
        rf = tuple(r + (k - 1) * j for r, j, (k, _) in zip(rf, jump, win))
        jump = tuple(j * s for j, (_, s) in zip(jump, win))
    if len(rf) != len(node.shape) - 1:
        return None, None
    return rf, jump


# --- public API --------------------------------------------------------------------------

def resolve(root, errors: ErrorCollector | None = None, filename: str = "",
            input_shape: tuple | None = None) -> Graph:
    errors = errors or ErrorCollector()
    if not isinstance(root, YMap):
        errors.add("an architecture file is a YAML mapping", getattr(root, "pos", None)
                   or Pos(filename, 1, 1), "", expected="keys name, input, layers, ...",
                   found=("a list" if isinstance(root, list) else describe(root))
                   if root is not None else "an empty file",
                   hint="put the layers under `layers:` next to `name:` and `input:`"
                   if isinstance(root, list) else None)
        errors.raise_if_any()
    arch, root = validate_lenient(Architecture, root, errors, "", "the architecture",
                                  optional=("description", "defaults", "heads"),
                                  per_entry=("heads",), placeholders={"name": "?"})
    if arch is None:
        errors.raise_if_any()
    graph = Resolver(arch, root, errors, input_shape).run()
    errors.raise_if_any()
    graph.source = filename
    return graph


def load_architecture(path, input_shape: tuple | None = None) -> Graph:
    return resolve(load_yaml_file(path), filename=str(path), input_shape=input_shape)


def load_architecture_text(text: str, filename: str = "<string>",
                           input_shape: tuple | None = None) -> Graph:
    return resolve(load_yaml_text(text, filename), filename=filename, input_shape=input_shape)
