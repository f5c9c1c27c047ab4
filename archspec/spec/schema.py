"""The typed top level of an architecture file. Layer options live with their kinds
(archspec/layers); this module describes the file around them."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from archspec.layers.activation import ActivationSpec
from archspec.layers.base import InitSpec

HeadOutput = Literal["softmax", "sigmoid", "linear", "softplus"]


class Strict(BaseModel):
    """The base of every file-level schema (architectures and experiments): unknown keys are
    errors, "64" is not 64, and every number is finite (nan/inf never reach the optimiser,
    the loop or a shape)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True,
                              allow_inf_nan=False)


class InputSpec(Strict):
    shape: list[int | str] = Field(description="shape without the batch axis, e.g. [224, 224, 3]")
    dtype: Literal["float32", "int32"] = "float32"


class Defaults(Strict):
    activation: ActivationSpec | None = Field(
        None, description="activation of dense/conv layers that do not set one")
    bias: bool = True
    init: InitSpec = "he_normal"
    bias_init: InitSpec = "zeros"


class BlockDef(Strict):
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="parameters with their default values")
    layers: list[Any]
    description: str | None = None


class HeadSpec(Strict):
    from_: str | None = Field(None, alias="from", description="node the head reads; default: the last layer")
    layers: list[Any] = Field(default_factory=list)
    output: HeadOutput = "linear"
    loss_weight: float = 1.0
    train_only: bool = Field(False, description="an auxiliary output used in training only: "
                             "the summary's inference parameters and MACs leave it out")


class Architecture(Strict):
    name: str
    description: str | None = None
    input: InputSpec | None = None
    inputs: dict[str, InputSpec] | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    variables: dict[str, int | float | bool | str] = Field(default_factory=dict)
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    layers: list[Any]
    heads: dict[str, HeadSpec] | None = None
