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
MAX_YAML_NODES = 200_000   # YAML nodes of one document after alias expansion
MAX_VALUES = 50_000        # nodes written in the file (each file of the zoo has under 500)
MAX_CHARS = 2**20          # characters per file (the zoo's largest has under 4,000): the
                           # pure-Python safe loader takes seconds per megabyte
MAX_NESTING = 100          # lists and mappings inside each other
MAX_INT_DIGITS = 100       # longest integer literal


class _Refused(yaml.MarkedYAMLError):
    """A document archspec will not load (too deep, too big), with what to do about it."""

    def __init__(self, problem, mark, expected, found, hint):
        super().__init__(None, None, problem, mark)
        self.expected, self.found, self.hint = expected, found, hint


class YMap(dict):
    """A mapping that knows where it, each key and each value stand in a file."""

    pos: Pos
    key_pos: dict
    val_pos: dict

    def __init__(self, items=(), pos: Pos | None = None, key_pos: dict | None = None,
                 val_pos: dict | None = None):
        """Keys without a position given stand at `pos` (a mapping archspec writes itself,
        or one from the command line)."""
        super().__init__(items)
        self.pos = pos
        self.key_pos = {k: pos for k in self} | dict(key_pos or {})
        self.val_pos = {k: pos for k in self} | dict(val_pos or {})


class YList(list):
    pos: Pos
    item_pos: list


class _Loader(yaml.SafeLoader):
    pass


def _pos(loader, node) -> Pos:
    return Pos(loader.archspec_file, node.start_mark.line + 1, node.start_mark.column + 1)


def _count(loader):
    loader.archspec_nodes += 1
    if loader.archspec_nodes > MAX_YAML_NODES:
        raise yaml.constructor.ConstructorError(
            None, None,
            f"the document has more than {MAX_YAML_NODES:,} nodes; refusing to load it", None)


_MERGE = "tag:yaml.org,2002:merge"


def _construct_map(loader, node):
    _count(loader)
    m = YMap(pos=_pos(loader, node))
    for key, (knode, vnode) in _entries(loader, node, ()).items():
        m[key] = loader.construct_object(vnode, deep=True)
        m.key_pos[key], m.val_pos[key] = _pos(loader, knode), _pos(loader, vnode)
    return m


def _entries(loader, node, active) -> dict:
    """key -> (key node, value node) of a mapping node, with YAML merge keys applied: the
    mappings of `<<: *a` or `<<: [*a, *b]` are merged in (a key of an earlier one wins over
    a later one), and the mapping's own keys win over all merged ones. A merged key keeps the
    nodes of the mapping it comes from, so errors point at the anchor's key. Nodes are not
    modified (PyYAML's flatten_mapping rewrites shared anchor nodes in place)."""
    cache = loader.__dict__.setdefault("archspec_entries", {})
    if id(node) in cache:
        return cache[id(node)]
    if id(node) in active:
        raise yaml.constructor.ConstructorError(
            "while merging a mapping", node.start_mark,
            "a merge key '<<' refers to a mapping that contains it", None)
    active = active + (id(node),)
    merged, own, merge_at = {}, {}, None
    for knode, vnode in node.value:
        if knode.tag == _MERGE:
            if merge_at is not None:
                raise yaml.constructor.ConstructorError(
                    "first defined", merge_at, "duplicate key '<<'", knode.start_mark)
            merge_at = knode.start_mark
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a merge key '<<' takes a mapping (*anchor) or a list of "
                        "mappings", src.start_mark)
                for key, pair in _entries(loader, src, active).items():
                    merged.setdefault(key, pair)
            continue
        if knode.tag == "tag:yaml.org,2002:value":  # a plain '=' key is the string '='
            knode.tag = "tag:yaml.org,2002:str"
        key = loader.construct_object(knode, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", knode.start_mark)
        if key in own:
            first = own[key][0].start_mark
            raise yaml.constructor.ConstructorError(
                "first defined", first, f"duplicate key '{key}'", knode.start_mark)
        own[key] = (knode, vnode)
    entries = {**merged, **own} if merged else own
    cache[id(node)] = entries
    return entries


def _construct_seq(loader, node):
    _count(loader)
    lst = YList(loader.construct_object(v, deep=True) for v in node.value)
    lst.pos = _pos(loader, node)
    lst.item_pos = [_pos(loader, v) for v in node.value]
    return lst


def _construct_int(loader, node):
    if len(node.value) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(node.value):,} characters is too large",
                       node.start_mark, expected=f"at most {MAX_INT_DIGITS} digits",
                       found=f"{node.value[:20]}... ({len(node.value):,} characters)",
                       hint="no width, count or size needs a number this long")
    return loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
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
                    None, None, f"more than {MAX_ALIASES} aliases; refusing to load the file",
                    event.start_mark)
        self.archspec_composed = getattr(self, "archspec_composed", 0) + 1
        if self.archspec_composed > MAX_VALUES:
            raise _Refused(f"the document has more than {MAX_VALUES:,} values; refusing to "
                           "load it", self.peek_event().start_mark,
                           expected=f"at most {MAX_VALUES:,} values (lists, mappings, scalars)",
                           found="this value and more after it",
                           hint="an architecture needs far fewer; write repeated layers once "
                                "and use `repeat:`")
        self.archspec_depth = getattr(self, "archspec_depth", 0) + 1
        try:
            if self.archspec_depth > MAX_NESTING:
                raise _Refused("the document nests too deeply", self.peek_event().start_mark,
                               expected=f"at most {MAX_NESTING} levels of lists and mappings",
                               found=f"more than {MAX_NESTING} levels here",
                               hint="a network spec needs only a few levels of nesting")
            return super().compose_node(parent, index)
        finally:
            self.archspec_depth -= 1


def load_yaml_text(text: str, filename: str = "<string>"):
    if len(text) > MAX_CHARS:
        raise SpecErrors([too_big_error(filename, f"{len(text):,} characters")])
    try:
        loader = _BoundedComposer(text)
    except yaml.reader.ReaderError as exc:
        raise SpecErrors([not_text_error(filename, text[:exc.position],
                                    f"a control character (#x{exc.character:04x})")]) from None
    loader.archspec_file, loader.archspec_nodes, loader.archspec_aliases = filename, 0, 0
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, filename, loader.archspec_aliases)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise SpecErrors([_yaml_error(exc, text, filename)]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(f"YAML error: {exc}", Pos(filename, 1, 1))]) from None
    except RecursionError:
        raise SpecErrors([SpecError("the document nests too deeply", Pos(filename, 1, 1),
                                    expected="a few levels of nesting",
                                    found="hundreds of nested lists or mappings",
                                    hint="a network spec needs only a few levels of nesting")]
                         ) from None
    finally:
        loader.dispose()


def _check_expansion(root, filename: str, aliases: int) -> None:
    """Refuse a document whose aliases would expand it beyond MAX_YAML_NODES nodes, before
    anything is constructed. Sizes are counted once per distinct node, so this takes linear time."""
    sizes: dict[int, int] = {}

    def children(node):
        if isinstance(node, yaml.SequenceNode):
            return node.value
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    def size(node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1
            sizes[id(node)] = min(1 + sum(size(c) for c in children(node)), 10 * MAX_YAML_NODES)
        return sizes[id(node)]

    if size(root) <= MAX_YAML_NODES:
        return
    node = root
    while True:  # the innermost value that is already too big: where the aliases multiply
        big = [c for c in children(node) if size(c) > MAX_YAML_NODES]
        if not big:
            break
        node = big[0]
    n = size(node)
    raise SpecErrors([SpecError(
        "aliases expand this value to " + (f"{n:,}" if n < 10 * MAX_YAML_NODES else
                                           f"more than {10 * MAX_YAML_NODES:,}")
        + " nodes; refusing to load it (a 'billion laughs' alias bomb?)",
        _pos_of(node, filename),
        expected=f"at most {MAX_YAML_NODES:,} nodes after expanding aliases",
        found=f"{aliases} aliases in the file, nested inside each other",
        hint="write the repeated part once in a block and use `repeat:`")])


def _pos_of(node, filename: str) -> Pos:
    return Pos(filename, node.start_mark.line + 1, node.start_mark.column + 1)


_CLOSER = {"{": "}", "[": "]"}


def _yaml_error(exc, text: str, filename: str) -> SpecError:
    """Translate PyYAML's messages into what went wrong and how to fix it."""
    mark = exc.problem_mark or exc.context_mark
    pos = Pos(filename, mark.line + 1, mark.column + 1) if mark else Pos(filename, 1, 1)
    if isinstance(exc, _Refused):
        return SpecError(exc.problem, pos, expected=exc.expected, found=exc.found, hint=exc.hint)
    problem = (exc.problem or "invalid YAML").strip()
    context = (exc.context or "").strip()
    cmark = exc.context_mark
    at = f"line {cmark.line + 1}, column {cmark.column + 1}" if cmark else ""
    found, hint, message = _snippet(text, pos), None, None
    if "could not determine a constructor" in problem:
        tag = problem.split("tag '")[-1].rstrip("'").replace("tag:yaml.org,2002:", "!!")
        return SpecError(f"YAML tag '{tag}' is not allowed", pos, expected="plain YAML values",
                         found=found, hint="archspec loads YAML safely and never builds objects "
                                           "from tags; remove the tag")
    if "aliases" in problem or "alias bomb" in problem:
        return SpecError(f"{problem} (a 'billion laughs' alias bomb?)"
                         if "alias bomb" not in problem else problem, pos,
                         expected=f"at most {MAX_ALIASES} aliases", found=found,
                         hint="write the repeated part once in a block and use `repeat:`")
    if problem.startswith("duplicate key"):
        return SpecError(problem, pos, expected="each key once per mapping", found=found,
                         hint=(f"the first one is on {at}; " if at else "")
                         + "remove or rename one of them")
    if "'\\t'" in problem:
        message, hint = "a tab character in the indentation", "indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        message = "unexpected ':' (a key where none can start)"
        hint = ("this line is indented deeper than the lines above it, or a value that "
                "contains ': ' needs quotes")
    elif "expected <block end>" in problem or "expected <block " in problem:
        message = "this line is not indented like the lines around it"
        above = _line_above(text, pos.line)
        hint = ((f"it starts in column {pos.col}, line {above[0]} above it in column "
                 f"{above[1]}; " if above else "")
                + "entries of one mapping or list must start in the same column")
    elif context.startswith("while parsing a flow"):
        opener = "[" if "sequence" in context else "{"
        got = problem.split("but got ")[-1].strip("'")
        got = "the end of the file" if got == "<stream end>" else f"'{got}'"
        message = f"expected ',' or '{_CLOSER[opener]}' but found {got}"
        hint = f"the '{opener}' opened on {at} is not closed, or a ',' is missing"
    elif "quoted scalar" in context:
        pos = Pos(filename, cmark.line + 1, cmark.column + 1)
        found = _snippet(text, pos)
        message, hint = "a quoted string is never closed", "end the string with the same quote"
    elif "undefined alias" in problem:
        message = problem.replace("found undefined alias", "unknown alias")
        hint = "define the anchor (&name) before the alias (*name) that uses it"
    elif "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "?"
        message = f"'{char}' cannot start a value"
        hint = "put the value in quotes"
    else:
        message = problem.replace("<block end>", "the end of the block").replace(
            "<stream end>", "the end of the file")
        if context and problem.startswith("but "):
            message = f"{context} {message}"
            if "single document" in context:
                hint = "an architecture file holds one document: remove the '---' line"
    return SpecError(f"YAML syntax error: {message}", pos, expected="valid YAML", found=found,
                     hint=hint)


def _line_above(text: str, line: int):
    """(line, column) where the nearest non-blank, non-comment line above `line` starts."""
    lines = text.splitlines()
    for n in range(min(line - 1, len(lines)), 0, -1):
        stripped = lines[n - 1].lstrip(" ")
        if stripped and not stripped.startswith("#"):
            return n, len(lines[n - 1]) - len(stripped) + 1
    return None


def _snippet(text: str, pos: Pos) -> str:
    lines = text.splitlines()
    if 0 < pos.line <= len(lines):
        text = repr(lines[pos.line - 1].strip().replace("\t", "    "))
        return text if len(text) <= 80 else text[:76] + "...'"
    return "end of file"


def load_yaml_file(path) -> object:
    """A YAML file, read by yaml_file.read_yaml_text (bounded, never blocking, text only)."""
    from archspec.spec.yaml_file import read_yaml_text

    return load_yaml_text(read_yaml_text(path), str(path))


def not_text_error(filename: str, before, what: str) -> SpecError:
    """A file that is not YAML text (binary, another encoding, an environment block): where
    the first bad character is, never any of the file's content: it may be a key."""
    nl = "\n" if isinstance(before, str) else b"\n"
    pos = Pos(filename, before.count(nl) + 1, len(before) - before.rfind(nl))
    return SpecError("the file is not YAML text; its content is not shown", pos,
                     expected="UTF-8 text without control characters", found=what,
                     hint="is this the right file? a YAML file is plain text")


def too_big_error(filename: str, found: str) -> SpecError:
    return SpecError(f"the file is larger than {MAX_CHARS // 2**20} MiB; refusing to load it",
                     Pos(filename, 1, 1), expected=f"at most {MAX_CHARS:,} characters",
                     found=found, hint="an architecture file is a few kilobytes; "
                                       "is this the right file?")
