"""The one front door for what a user hands archspec: a YAML file or a run folder, read once
and given its kind once. Every command dispatches on `Document.kind`.

    architecture  a network: `layers:` (and `input:`, `blocks:`, ...)
    experiment    a network trained on data: `architecture:` (a path or inline)
    sweep         experiments to run: `experiment:` with `grid:` and/or `random:`
    run           a run folder (its own config.yaml and architecture.yaml)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archspec.spec.yaml_loader import load_yaml_file

KINDS = ("architecture", "experiment", "sweep", "run")


@dataclass(frozen=True)
class Document:
    path: Path
    kind: str
    root: object = None   # the YAML tree with positions (None for a run folder)


def kind_of(root) -> str:
    """The kind of a parsed file. Anything that is neither an experiment nor a sweep is read
    as an architecture, whose schema then names what it lacks (`layers:`)."""
    if isinstance(root, dict) and "architecture" in root:
        return "experiment"
    if isinstance(root, dict) and "experiment" in root and "layers" not in root:
        return "sweep"
    return "architecture"


def load(path: str | Path) -> Document:
    """Parse `path` once (a folder is a run folder, read by experiment.load_run)."""
    path = Path(path)
    if path.is_dir():
        return Document(path, "run")
    root = load_yaml_file(path)
    return Document(path, kind_of(root), root)
