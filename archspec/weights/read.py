"""Tensor files in and out: safetensors, NumPy's .npz, and PyTorch's state dicts.

Nothing here unpickles an arbitrary object. A PyTorch file is read by `torch.load` with
`weights_only=True` (tensors and plain containers only), and only when torch is installed;
an .npz is read with `allow_pickle=False`."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from archspec.weights.errors import WeightsError

FORMATS = ("safetensors", "npz", "torch")
TORCH_HINT = "install torch to read .pth; or convert the file to safetensors where torch is"


def sniff(path: Path) -> str:
    """The format a file's first bytes show: safetensors (a little-endian header length,
    then a JSON object), a zip (npz, or PyTorch's zip container), or a pickle (PyTorch's
    legacy format)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise WeightsError(f"{path}: a damaged zip archive ({exc})") from None
        return "torch" if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names) \
            else "npz"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"  # first: a header of 128 + 256k bytes also starts with 0x80
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch"  # a pickle stream (protocol 2+): torch.save's legacy format
    raise WeightsError(f"{path}: not a tensor file archspec reads",
                       hint="archspec reads safetensors, .npz and PyTorch state dicts (.pth)")


def read_tensors(path, format: str | None = None) -> dict[str, np.ndarray]:
    """Every tensor in the file, by its name in the file. `format` None: from the content."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    found = sniff(path)
    if format is not None and format not in FORMATS:
        raise WeightsError(f"unknown weights format '{format}'",
                           hint="one of: " + ", ".join(FORMATS))
    if format is not None and format != found:
        raise WeightsError(f"{path}: the file holds {found}, not {format}",
                           hint=f"drop the format, or say format: {found}")
    reader = {"safetensors": _safetensors, "npz": _npz, "torch": _torch}[found]
    tensors = reader(path)
    if not tensors:
        raise WeightsError(f"{path}: the file holds no tensors")
    return tensors


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    _check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own types for damaged files
        raise WeightsError(f"{path}: cannot read the safetensors file ({exc})") from None


def _check_safetensors_header(path: Path) -> None:
    """A truncated or damaged file is named as such (the library's own message is terse)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if 8 + n > size:
            raise WeightsError(f"{path}: truncated safetensors file (header of {n} bytes, "
                               f"file of {size})")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise WeightsError(f"{path}: damaged safetensors header") from None
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if 8 + n + max(ends, default=0) > size:
        raise WeightsError(f"{path}: truncated safetensors file (its tensors need "
                           f"{8 + n + max(ends)} bytes, the file has {size})")


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise WeightsError(f"{path}: refused: {exc}",
                           hint="an .npz of plain numeric arrays is read; pickled objects "
                                "never are") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"{path}: damaged .npz file ({exc})") from None


def _torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise WeightsError(f"{path}: a PyTorch file (pickle); archspec reads it only through "
                           "torch.load(weights_only=True), and torch is not installed",
                           hint=TORCH_HINT) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything but tensors, RuntimeError if cut
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: refused by torch.load(weights_only=True): {first}",
                           hint="only state dicts of tensors are read") from None
    return _state_dict(obj, path, torch)


def _state_dict(obj, path: Path, torch) -> dict[str, np.ndarray]:
    """A state dict, or one nested under a checkpoint's usual keys."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict (a mapping of names to tensors)")
    out = {}
    for k, t in obj.items():
        t = t.detach().cpu()
        out[k] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return out


def write_tensors(tensors: dict[str, np.ndarray], path, metadata: dict | None = None) -> Path:
    """Write by the path's suffix: .safetensors or .npz."""
    path = Path(path)
    arrays = {k: np.asarray(v, order="C") for k, v in tensors.items()}  # 0-d stays 0-d
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
    elif path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        raise WeightsError(f"{path}: archspec writes .safetensors or .npz",
                           hint="name the output file.safetensors or file.npz")
    return path
