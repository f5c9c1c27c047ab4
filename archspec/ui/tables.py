"""Every table archspec prints goes through `table()`: a number or a name is never cut.

    from archspec.ui.tables import Column, table
    t = table([Column("layer", "name"), Column("params", "number"),
               Column("RF", "number", drop=1)],
              rows=[["conv1", "9,408", "7"]], title="resnet50")
    console.print(t)

Columns say what they hold:
- "number": right-justified, never wrapped or cut; the column is as wide as its widest cell;
- "name": may wrap (folding long words), never cut;
- "text": anything else, wraps at spaces.
`drop` ranks the columns that may be hidden when the table does not fit the terminal: the
highest is dropped first; None (the default) is never dropped. A caption names what was
hidden. When even the kept columns do not fit, the table is drawn wider than the terminal
(the terminal wraps the lines) rather than cutting a cell. When the output is not a terminal
(a file, a pipe) the table is drawn at its full natural width, whatever COLUMNS says.

`grid()` is the same for key/value layouts without borders or headers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from rich import box as boxes
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

WIDE = 10**6  # "unbounded" for measuring a table's natural width
KINDS = ("number", "name", "text")


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"              # "number", "name" or "text"
    drop: int | None = None         # may be hidden to fit; higher goes first
    justify: str | None = None      # default: right for numbers, left otherwise
    style: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column kind must be one of {KINDS}, not {self.kind!r}")


class FitTable:
    """A table that fits its width by hiding columns, never by cutting cells."""

    def __init__(self, columns: Sequence[Column], rows: Iterable[Sequence], title=None,
                 caption: str | None = None, **table_options):
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValueError(f"a row of {len(r)} cells for {len(self.columns)} columns")
        self.title, self.caption, self.options = title, caption, table_options

    def build(self, hidden: frozenset[int] = frozenset()) -> Table:
        """The rich Table without the columns numbered in `hidden`."""
        keep = [i for i in range(len(self.columns)) if i not in hidden]
        caption = _hidden_caption([self.columns[i].header for i in sorted(hidden)])
        captions = [c for c in (self.caption, caption) if c]
        t = Table(title=self.title, caption="\n".join(captions) or None,
                  caption_justify="left", **self.options)
        for i in keep:
            t.add_column(**_column_options(self.columns[i]), min_width=self._widest(i))
        for r in self.rows:
            t.add_row(*[r[i] for i in keep])
        return t

    def _widest(self, i: int) -> int | None:
        """A number column's width: its widest cell, so the layout can never squeeze it
        (rich measures a no_wrap cell's minimum by its longest word)."""
        if self.columns[i].kind != "number":
            return None
        return max((cell_len(line) for r in self.rows for line in plain(r[i]).splitlines()),
                   default=0)

    def fitted(self, console: Console, width: int) -> tuple[Table, int]:
        """The table to draw in `width` columns of a terminal, and the width to draw it at."""
        hidden: frozenset[int] = frozenset()
        order = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        t = self.build()
        while natural_width(console, t) > width and order:
            hidden |= {order.pop()[1]}
            t = self.build(hidden)
        need = natural_width(console, t)
        if need <= width:
            return t, need
        return t, max(width, minimum_width(console, t))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not console.is_terminal:
            t = self.build()
            yield from console.render(t, options.update(width=natural_width(console, t)))
            return
        t, width = self.fitted(console, options.max_width)
        yield from console.render(t, options.update(width=width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.build())


def table(columns: Sequence[Column], rows: Iterable[Sequence], title=None, *,
          caption: str | None = None, show_header: bool = True, box=boxes.HEAVY_HEAD,
          **options) -> FitTable:
    """A table of `rows` (cells: str, markup allowed, or rich Text) under `columns`."""
    options.setdefault("title_justify", "left")
    options.setdefault("header_style", "bold")
    return FitTable(columns, rows, title, caption, show_header=show_header, box=box, **options)


def grid(columns: Sequence[Column], rows: Iterable[Sequence], title=None,
         padding=(0, 2), **options) -> FitTable:
    """Key/value lines: the columns of `table()` without borders or headers (the layout of
    rich's Table.grid; any option may be overridden)."""
    for key, value in (("show_edge", False), ("pad_edge", False), ("collapse_padding", True)):
        options.setdefault(key, value)
    return table(columns, rows, title, show_header=False, box=None, padding=padding, **options)


def natural_width(console: Console, renderable) -> int:
    """The width a table takes when nothing limits it."""
    return Measurement.get(console, console.options.update_width(WIDE), renderable).maximum


def minimum_width(console: Console, renderable) -> int:
    """The narrowest width at which no number is cut (names fold)."""
    return Measurement.get(console, console.options.update_width(WIDE), renderable).minimum


def _column_options(c: Column) -> dict:
    number = c.kind == "number"
    return {"header": c.header, "justify": c.justify or ("right" if number else "left"),
            "style": c.style, "no_wrap": number, "overflow": "fold"}


def _hidden_caption(headers: list[str]) -> str | None:
    if not headers:
        return None
    names = ", ".join(headers)
    return (f"{names} column{'s' if len(headers) > 1 else ''} hidden: widen the terminal "
            "or pipe to a file")


def plain(cell) -> str:
    """A cell's text as the reader sees it (markup removed)."""
    if isinstance(cell, Text):
        return cell.plain
    text = str(cell)
    return Text.from_markup(text).plain if "[" in text else text  # no markup: itself
