"""Names and references while expanding: naming a node, adding it to the graph, resolving
`inputs:` against the scopes in reach, and (at the end) explaining every reference that
did not resolve."""
from __future__ import annotations

from archspec.errors import ErrorCollector, Pos, describe, did_you_mean
from archspec.spec.frame import Frame, Scope
from archspec.spec.graph import Graph, Node
from archspec.spec.limits import MAX_NAME
from archspec.spec.yaml_loader import YMap


class References:
    def __init__(self, graph: Graph, errors: ErrorCollector):
        self.graph, self.errors = graph, errors
        self.positions: dict[str, Pos] = {}   # every named node, for "defined later" errors
        self.deferred: list = []              # unresolved references, checked at the end

    def name(self, frame: Frame, given, key: str, value, vpos) -> str:
        """The local name of an instance of `key`: `given`, or an automatic one."""
        scope, path = frame.scope, frame.path
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
        if frame.count > 1 and "$" not in str(value.get("name")):
            given = f"{given}_{frame.i + 1}"
        if given in scope.names:
            first = self.graph.nodes.get(scope.names[given])
            line = f" (first on line {first.pos.line})" if first and first.pos else ""
            self.errors.add(f"name '{given}' is used twice in the same block{line}",
                            value.val_pos.get("name", vpos), path,
                            expected="a name not used before in this block", found=repr(given),
                            hint="names must be unique within a block; use ${i} in repeated names")
            return scope.auto_name(key)
        return given

    def add(self, node: Node, scope: Scope, local: str) -> None:
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

    def inputs(self, frame: Frame, given, value, vpos, node_id: str, kind) -> list | None:
        """The node ids an item reads (`kind` None for blocks and sugar: one input), or None
        after an error or a reference deferred to `check_deferred`."""
        n_in = kind.n_inputs if kind else 1
        if given is None:
            return self._implicit(frame.prev, kind, n_in, vpos, node_id)
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
            target = frame.scope.lookup(ref) if isinstance(ref, str) else None
            if target is None and isinstance(ref, str) and ref in self.graph.nodes:
                target = ref  # a full dotted path into a block instance
            if target is None:
                self.deferred.append((ref, pos, node_id, frame.scope.visible()))
                return None
            out.append(target)
        return out

    def _implicit(self, prev, kind, n_in, vpos, node_id):
        """No `inputs:`: the previous node, if there is exactly one to read."""
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

    def collect_names(self, root) -> None:
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
        walk(root)

    def check_deferred(self) -> None:
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
