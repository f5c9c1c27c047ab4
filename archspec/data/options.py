"""Per-dataset option models and their validation into DataError."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import did_you_mean
from .errors import DataError


class SourceOptions(BaseModel):
    """Base of every dataset's `options`; a source with no options uses it as is."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def parse_options(dataset: str, model: type[SourceOptions], raw: dict) -> SourceOptions:
    known = list(model.model_fields)
    for key in raw:
        if key not in known:
            hint = did_you_mean(key, known) or (
                f"'{dataset}' takes options: {', '.join(known)}" if known
                else f"'{dataset}' takes no options")
            raise DataError(f"unknown option '{key}' for dataset '{dataset}'", hint=hint,
                            option=str(key))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise DataError(f"option '{key}' of dataset '{dataset}': {first['msg']}",
                        hint=f"got {first.get('input')!r}", option=key) from None
