"""The one error type the data package raises for problems a user can fix."""
from __future__ import annotations

from ..errors import ArchspecError, SpecError


class DataError(ArchspecError):
    """A data problem found before training starts.

    `file` names the file or folder at fault and `record` the place inside it: an
    ``index N`` (0-based) for array files, ``line N, column 'c'`` for CSV, or an image
    path. `option` names the offending key of `data.options` when one is to blame, so a
    caller can point at the YAML line.
    """

    def __init__(self, message: str, *, file: str | None = None, record: str | None = None,
                 hint: str | None = None, option: str | None = None):
        self.option = option
        self.file = str(file) if file is not None else None
        self.record = record
        super().__init__(message, hint)
        self.args = (self.render(),)

    def render(self) -> str:
        where = ": ".join(p for p in (self.file, self.record) if p)
        text = f"{where}: error: {self.message}" if where else f"error: {self.message}"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")

    def located(self) -> list[SpecError]:
        where = ": ".join(p for p in (self.file, self.record) if p)
        return [SpecError(self.message, self.pos, where, hint=self.hint)]
