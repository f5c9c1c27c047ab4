"""Pictures of networks and runs: training curves, architecture diagrams, feature maps and
the pooling demonstration. Each module imports matplotlib (Agg) or JAX only when called."""
from __future__ import annotations

from pathlib import Path

from archspec.errors import ArchspecError


class VizError(ArchspecError):
    """A picture that cannot be drawn; by default a file problem (exit 1)."""

    exit_code = 1


class PictureInputError(VizError):
    """An input or option a picture cannot be drawn from (exit 2)."""

    exit_code = 2


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


IMAGE_TYPES = ("png", "svg", "pdf", "jpg", "jpeg")


def check_image_path(path) -> Path:
    """-o of a picture: a file type matplotlib writes, checked before any work is done."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in IMAGE_TYPES:
        raise PictureInputError(f"cannot write a picture as '{path.suffix or path.name}'",
                       "end the -o file name with .png (or .svg, .pdf, .jpg)")
    return path


def save_figure(fig, path) -> Path:
    path = check_image_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight", facecolor="white")
    except OSError as exc:
        raise VizError(f"cannot write {path}: {exc.strerror or exc}",
                       "choose a writable path with -o") from None
    finally:
        pyplot().close(fig)
    return path
