"""Reading a YAML file from disk before it is parsed: only a file named as YAML (after
links), opened so that a FIFO or device is refused before it can block, never more than
MAX_CHARS read, and a file that is not UTF-8 text refused without a byte of it quoted."""
from __future__ import annotations

from pathlib import Path

from archspec.errors import Pos, SpecError, SpecErrors
from archspec.reading import UnreadableFile, open_regular
from archspec.spec.yaml_loader import MAX_CHARS, not_text_error, too_big_error


def read_yaml_text(path) -> str:
    """The text of a YAML file, read as reading.read_bytes reads any file: a FIFO or device
    is refused before it can block, never more than the limit is read (a 50 MB file,
    /dev/zero), and a file that is not UTF-8 text is refused without quoting it."""
    _require_yaml_name(path)
    try:
        with open_regular(path) as f:
            data = f.read(MAX_CHARS + 1)
    except UnreadableFile as exc:
        hint = "check the path" if exc.missing else exc.hint
        raise SpecErrors([SpecError(exc.message, Pos(str(path), 1, 1), hint=hint)]) from None
    except OSError as exc:
        raise SpecErrors([SpecError(f"cannot read file: {exc.strerror or exc}",
                                    Pos(str(path), 1, 1))]) from None
    if len(data) > MAX_CHARS:
        raise SpecErrors([too_big_error(str(path), "more than that")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecErrors([not_text_error(str(path), data[:exc.start],
                                    f"a byte that is not UTF-8 (0x{data[exc.start]:02x})")]
                         ) from None
    return text


YAML_SUFFIXES = (".yaml", ".yml", ".json")


def _require_yaml_name(path) -> None:
    """Only a file named as YAML (or JSON) is read, after links: an `architecture:` or a
    link that names ~/.aws/credentials or /etc/passwd is refused unread, so no line of it
    can reach an error (a syntax error quotes the line it is on)."""
    p = Path(path)
    target = p.resolve()
    if target.suffix.lower() in YAML_SUFFIXES or not p.exists():
        return
    via = f" (a link to a file named '{target.name}')" if target.name != p.name else ""
    raise SpecErrors([SpecError(
        f"not a YAML file{via}; refusing to read it", Pos(str(path), 1, 1),
        expected="a file named *.yaml, *.yml or *.json",
        hint="give the architecture or experiment file; rename it if it is one")])
