"""The weights stage's one error type."""
from __future__ import annotations

from archspec.errors import ArchspecError


class WeightsError(ArchspecError):
    """A tensor file that cannot be read, or that does not fit the spec: exit 2."""

    exit_code = 2
