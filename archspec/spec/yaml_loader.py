"""Safe YAML loading that remembers where every key and value came from.

Mappings load as `YMap` and sequences as `YList`; both carry the position of the node
itself and of each entry, so any later stage can point at file:line:col. Only the safe
constructors are used (no Python object tags), and aliases are bounded so a
"billion laughs" document is refused instead of expanded.
"""
from __future__ import annotations

import yaml

from archspec.errors import Pos, SpecError, SpecErrors

MAX_ALIASES = 100          # aliases per document
MAX_NODES = 200_000        # nodes after alias expansion


class YMap(dict):
    pos: Pos
    key_pos: dict
    val_pos: dict


class YList(list):
    pos: Pos
    item_pos: list


class _Loader(yaml.SafeLoader):
    pass


def _pos(loader, node) -> Pos:
    return Pos(loader.archspec_file, node.start_mark.line + 1, node.start_mark.column + 1)


def _count(loader):
    loader.archspec_nodes += 1
    if loader.archspec_nodes > MAX_NODES:
        raise yaml.constructor.ConstructorError(
            None, None, f"document expands to more than {MAX_NODES} nodes (alias bomb?)", None)


def _construct_map(loader, node):
    _count(loader)
    loader.flatten_mapping(node)
    m = YMap()
    m.pos, m.key_pos, m.val_pos = _pos(loader, node), {}, {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", knode.start_mark)
        if key in m:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", knode.start_mark)
        m[key] = loader.construct_object(vnode, deep=True)
        m.key_pos[key], m.val_pos[key] = _pos(loader, knode), _pos(loader, vnode)
    return m


def _construct_seq(loader, node):
    _count(loader)
    lst = YList(loader.construct_object(v, deep=True) for v in node.value)
    lst.pos = _pos(loader, node)
    lst.item_pos = [_pos(loader, v) for v in node.value]
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


class _BoundedComposer(_Loader):
    """Counts aliases while composing, before anything is expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.archspec_aliases += 1
            if self.archspec_aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases; refusing to expand",
                    event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_text(text: str, filename: str = "<string>"):
    loader = _BoundedComposer(text)
    loader.archspec_file, loader.archspec_nodes, loader.archspec_aliases = filename, 0, 0
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(filename, mark.line + 1, mark.column + 1) if mark else Pos(filename, 1, 1)
        problem = exc.problem or "invalid YAML"
        hint = None
        if "could not determine a constructor" in problem:
            problem = "YAML tags are not allowed: " + problem.split("tag '")[-1].rstrip("'")
            hint = "archspec loads YAML safely; remove the '!' tag"
        elif "tab" in problem:
            hint = "indent with spaces, not tabs"
        raise SpecErrors([SpecError(f"YAML syntax error: {problem}", pos,
                                    expected="valid YAML", found=_snippet(text, pos),
                                    hint=hint)]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(f"YAML error: {exc}", Pos(filename, 1, 1))]) from None
    finally:
        loader.dispose()


def _snippet(text: str, pos: Pos) -> str:
    lines = text.splitlines()
    if 0 < pos.line <= len(lines):
        return repr(lines[pos.line - 1].strip())
    return "end of file"


def load_yaml_file(path) -> object:
    from pathlib import Path
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecErrors([SpecError("file not found", Pos(str(path), 1, 1),
                                    hint="check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecErrors([SpecError(f"cannot read file: {exc}", Pos(str(path), 1, 1))]) from None
    return load_yaml_text(text, str(path))
