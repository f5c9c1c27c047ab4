"""Where the expansion stands: the names in reach (`Scope`) and the position inside the
YAML tree (`Frame`), so that each step passes one value instead of eight."""
from __future__ import annotations

from dataclasses import dataclass


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

    def child(self, local: str) -> "Scope":
        """The scope of a block instance, residual or branch named `local` inside this one."""
        return Scope(self.prefix + local + ".", self)


@dataclass(frozen=True)
class Frame:
    """One step of the expansion. `prev` is the node an item reads when it gives no `inputs:`;
    `i`/`count` are the repetition being expanded; `calls` the chain of blocks entered (to
    refuse a block that uses itself)."""
    scope: Scope
    prev: str | None
    env: dict
    path: str
    depth: int = 0
    i: int = 0
    count: int = 1
    calls: tuple = ()

    # Children are built with the constructor, not `dataclasses.replace`: one per item of
    # every layer list, and `replace` costs several times more.
    def at(self, path: str, prev: str | None) -> "Frame":
        """The next item of a sequence."""
        return Frame(self.scope, prev, self.env, path, self.depth, self.i, self.count,
                     self.calls)

    def repetition(self, i: int, count: int, prev: str | None) -> "Frame":
        """Repetition `i` of `count`, reading `prev`: `${i}` is bound, and the path numbered
        when the item is repeated."""
        path = self.path if count == 1 else f"{self.path}#{i}"
        return Frame(self.scope, prev, {**self.env, "i": i}, path, self.depth, i, count,
                     self.calls)

    def nested(self, scope: Scope, prev: str | None, path: str, env: dict | None = None,
               calls: tuple | None = None) -> "Frame":
        """The body of a block, residual or branch: one level deeper, in its own scope."""
        return Frame(scope, prev, self.env if env is None else env, path, self.depth + 1,
                     calls=self.calls if calls is None else calls)
