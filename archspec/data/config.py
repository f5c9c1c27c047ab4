"""The `data:` section of a spec."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import DataError
from .options import SourceOptions, parse_options
from .registry import SOURCES

DatasetName = Literal["digits", "shapes", "function", "wine", "breast_cancer", "iris", "idx",
                      "cifar", "image_folder", "npz", "csv", "timeseries", "text", "video",
                      "shapes_masks", "mnist1d"]


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: DatasetName
    path: str | None = Field(None, description="file or folder for user formats")
    options: dict = Field(default_factory=dict, description="format-specific options")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of the training "
                                "examples held out for validation (0: none; the run is "
                                "tested with its latest weights)")
    test_fraction: float = Field(0.2, ge=0, lt=1)
    normalize: Literal["standard", "minmax", "none"] = "standard"
    resize: bool = Field(True, description="resize images to the input shape, else error")
    limit: int | None = Field(None, ge=1, description="use at most this many examples")
    workers: int = Field(0, ge=0, le=64, description="processes that decode streamed images "
                                                     "(0: the prefetch thread decodes them)")

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be below 1 to leave "
                             "examples for training")
        if self.path is not None and not SOURCES[self.name].takes_path:
            raise DataError(f"dataset '{self.name}' is built in and takes no `path`",
                            hint="remove `path`, or use a file format: idx, cifar, "
                            "image_folder, npz, csv")
        self.source_options()  # raises DataError on unknown or mistyped options
        return self

    def source_options(self) -> SourceOptions:
        return parse_options(self.name, SOURCES[self.name].options, self.options)
