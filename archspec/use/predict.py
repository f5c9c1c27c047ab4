"""A trained run's outputs for new examples in files.

The serving path after training. A run folder holds everything needed: the architecture,
the config (which data set, hence the class names and the normalisation statistics of its
train split) and the checkpoints. Inputs are read in the units the network was trained on
and normalised exactly as in training:

- images (PNG, JPEG, ...): converted to the input's channels (grey or RGB), resized to its
  height and width, pixel values brought to the data set's range (0..16 for `digits`,
  0..1 for `shapes`, else 0..255 as in image files), then reshaped to the input (a flat
  input takes a square image);
- `.npy` arrays: one example of the input's shape, or a batch of them;
- every value must be finite and fit float32 (NaN, inf or 1e300 are refused, naming the
  file and the example); images may declare at most 50 million pixels;
- CSV files: a header row and one example per row. A run trained on a CSV file takes the
  same feature columns by name (its target column may be present or not); any other run
  reads every column as a feature.

Each head's output function turns its raw values into the prediction: class probabilities
(softmax), independent probabilities (sigmoid), or values (linear, softplus).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from archspec.data import DataError, apply_normalization
from archspec.data.values import check_values

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
CSV_SUFFIXES = (".csv", ".tsv")
PIXEL_MAX = {"digits": 16.0, "shapes": 1.0}  # image sets not stored as 0..255
CHUNK = 256


def predict(run_dir: Path, inputs: list[Path], top: int = 5, which: str = "best",
            warn=None) -> dict:
    """Predictions for every example of every input file, as a JSON-ready dict. Changed
    sources and a missing best checkpoint are told to `warn`."""
    from archspec.experiment.load import load_run
    from archspec.use.evaluate import load_state
    from archspec.engine.reporter import ignore
    from archspec.runs.files import RunFolderError

    warn = warn or ignore

    for path in inputs:  # before anything slow: a typo fails at once
        _check_file(Path(path))
    exp, graph, _ = load_run(Path(run_dir), warn)
    if len(graph.inputs) != 1:
        raise RunFolderError(f"predict reads one input; this network has {len(graph.inputs)} "
                       f"({', '.join(graph.inputs)})")
    (inp,) = graph.inputs.values()
    shape, dtype = tuple(inp.shape), inp.dtype
    examples, origins = [], []
    for path in inputs:  # read (and check) every file before restoring the model
        x, where = read_examples(Path(path), shape, dtype, exp.data, exp.data.name)
        examples.append(x)
        origins += [{"input": str(path), **w} for w in where]
    x = np.concatenate(examples)
    setup, state, which = load_state(Path(run_dir), which, warn)
    graph, dataset = setup.graph, setup.dataset
    with np.errstate(over="ignore", invalid="ignore"):  # found below, with the example named
        x = apply_normalization(x, dataset.norm_stats).astype(
            np.int32 if dtype == "int32" else np.float32)
    _check_finite(x, origins, "the input, normalised by the training data's statistics, is "
                  "not finite (inf or NaN): it overflows float32")
    raw = _run(setup.model, state, x, setup.exp.eval_flip)
    for name, values in raw.items():
        _check_finite(values, origins, f"the network's output '{name}' is not finite (inf or "
                      "NaN) for this input: it overflows float32 inside the network")
    shown = {n: h for n, h in graph.heads.items() if not h.train_only}  # inference heads
    heads = {name: _head_values(head.output, raw[name]) for name, head in shown.items()}
    predictions = []
    for i, origin in enumerate(origins):
        entry = {**origin, "heads": {}}
        for name, head in shown.items():
            entry["heads"][name] = _describe(head.output, heads[name][i], top,
                                             dataset.class_names)
        predictions.append(entry)
    return {"run": str(run_dir), "checkpoint": which, "step": int(state.step),
            "heads": {n: h.output for n, h in shown.items()},
            "predictions": predictions}


# --- reading inputs --------------------------------------------------------------------------

def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError("input file not found" if not path.exists() else "not a file",
                        file=str(path), hint="give image files, .npy arrays or CSV files")
    if path.suffix.lower() not in (*IMAGE_SUFFIXES, ".npy", *CSV_SUFFIXES):
        raise DataError(f"cannot read '{path.suffix or path.name}' files", file=str(path),
                        hint="give images (.png, .jpg), .npy arrays or .csv tables")


def read_examples(path: Path, shape: tuple, dtype: str, data_cfg, data_name: str):
    """(examples (N, *shape) in training units, one {record} per example) from one file."""
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        x = read_image(path, shape, PIXEL_MAX.get(data_name, 255.0))[None]
        where = [{}]
    elif suffix == ".npy":
        x = read_npy(path, shape)
        where = [{"index": i} for i in range(len(x))] if len(x) > 1 else [{}]
    else:
        x, lines = read_csv(path, shape, data_cfg, "\t" if suffix == ".tsv" else ",")
        where = [{"line": n} for n in lines]
    if dtype == "int32":
        if not np.all(np.isfinite(x)) or not np.all(np.equal(np.mod(x, 1), 0)):
            raise DataError("this network reads integer token ids, but the values are not "
                            "whole numbers", file=str(path))
        return x.astype(np.int32), where
    return x.astype(np.float32), where  # integer arrays too: ints would skip normalisation


def read_image(path: Path, shape: tuple, pixel_max: float) -> np.ndarray:
    """One image in training units. Its declared size is checked before decoding (see
    archspec.data.images), so a small file declaring huge dimensions is refused."""
    from PIL import Image

    from archspec.data.images import is_sixteen_bit, open_image

    h, w, c = _image_geometry(shape, path)
    im = open_image(path)
    if is_sixteen_bit(im):  # PIL would clip 16-bit values to 255; scale them instead
        im = Image.fromarray(np.round(np.asarray(im, np.float32) / 257).astype(np.uint8))
    try:
        im = im.convert({1: "L", 3: "RGB", 4: "RGBA"}[c])
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        pixels = np.asarray(im, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the image: {exc}", file=str(path)) from None
    pixels = pixels.reshape(h, w, c) * np.float32(pixel_max / 255.0)
    return pixels.reshape(shape)


def _image_geometry(shape: tuple, path: Path) -> tuple[int, int, int]:
    if len(shape) == 3 and shape[2] in (1, 3, 4):
        return shape
    if len(shape) == 2:
        return (*shape, 1)
    if len(shape) == 1:  # a flat input: a square grey or colour image
        for c in (1, 3):
            side = math.isqrt(shape[0] // c)
            if side * side * c == shape[0]:
                return side, side, c
    raise DataError(f"an image does not fit the network's input shape {shape}", file=str(path),
                    hint="images fit inputs (H, W, C) with 1, 3 or 4 channels, (H, W), or a "
                         "flat H·W or H·W·3; save other inputs as .npy")


def read_npy(path: Path, shape: tuple) -> np.ndarray:
    from archspec.data.files import read_npy as read_checked

    a = read_checked(path, "input file")  # its header checked against the file's size
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise DataError(f"a .npy array of {a.dtype} is not numeric", file=str(path))
    if np.iscomplexobj(a):
        raise DataError(f"a .npy array of {a.dtype} is not real-valued", file=str(path))
    size = math.prod(shape)
    if tuple(a.shape) == shape or (a.ndim != len(shape) + 1 and a.size == size):
        check_values(a.reshape(1, -1), str(path), "the array", record=lambda i: None)
        return _fit(a.reshape(1, *a.shape), shape, path)        # one example
    if a.ndim >= 1 and len(a) and a.size == len(a) * size:
        check_values(a, str(path), "the array")                 # records: index i
        return _fit(a, shape, path)                              # a batch
    raise DataError(f"array of shape {tuple(a.shape)} does not fit the network's input "
                    f"shape {shape}", file=str(path),
                    hint=f"save one example as {shape} or a batch as "
                         f"(N, {', '.join(map(str, shape))})")


def _fit(a: np.ndarray, shape: tuple, path: Path) -> np.ndarray:
    from archspec.data.shaping import fit_to_shape

    x = a.astype(np.int64 if np.issubdtype(a.dtype, np.integer) else np.float32, copy=False)
    return fit_to_shape(x, shape, image=False, resize=False, source=str(path))


def read_csv(path: Path, shape: tuple, data_cfg, delimiter: str):
    from archspec.data.sources import csv_table as T

    header, rows = T._read_rows(path, delimiter)
    if not rows:
        raise DataError("no rows below the header", file=str(path))
    columns = _feature_columns(header, data_cfg, path)
    if columns is None:
        columns = list(range(len(header)))
        if len(columns) != math.prod(shape):
            raise DataError(f"{len(columns)} columns, but the network reads "
                            f"{math.prod(shape)} features", file=str(path),
                            hint="one column per input feature, with a header row")
    x = np.array([[T._number(r, i, header, path) for i in columns] for r in rows],
                 dtype=np.float32).reshape(len(rows), len(columns))
    return _fit(x, shape, path), [r.line for r in rows]


def _feature_columns(header: list[str], data_cfg, path: Path) -> list[int] | None:
    """A run trained on a CSV file: the training file's feature columns, by name."""
    if data_cfg.name != "csv" or not data_cfg.path or not Path(data_cfg.path).is_file():
        return None
    from archspec.data.sources import csv_table as T

    opts = data_cfg.source_options()
    train_header, _ = T._read_rows(Path(data_cfg.path), opts.delimiter)
    targets = {train_header[i] for i in T._target_columns(train_header, opts.target,
                                                          Path(data_cfg.path))}
    features = [h for h in train_header if h not in targets]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", file=str(path),
                        hint=f"the run was trained on the columns {', '.join(features)}")
    return [header.index(f) for f in features]


# --- running the model -----------------------------------------------------------------------

def _run(model, state, x: np.ndarray, flip: bool = False) -> dict:
    """Raw head outputs for every example, in chunks of one compiled size (`flip`: the mean
    with the mirrored images', as the run was evaluated)."""
    import jax

    from archspec.engine.step import eval_outputs

    variables = {"params": state.params, "batch_stats": state.batch_stats}
    apply = jax.jit(lambda v, x: eval_outputs(model, v, x, flip))
    size = min(CHUNK, len(x))
    outs = []
    for start in range(0, len(x), size):
        part = x[start:start + size]
        real = len(part)
        if real < size:  # pad the last chunk: one shape, one compilation
            part = np.concatenate([part, np.repeat(part[:1], size - real, axis=0)])
        out = jax.device_get(apply(variables, part))
        outs.append({k: np.asarray(v, np.float32)[:real] for k, v in out.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def _check_finite(values: np.ndarray, origins: list[dict], message: str) -> None:
    """An input within float32 can still overflow (3e38 divided by a small std, or times a
    weight): the values are inf or NaN, and a probability of "nan%" is no answer."""
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        where = ", ".join(f"{k} {v}" for k, v in origins[i].items() if k != "input")
        raise DataError(message, file=origins[i]["input"], record=where or None,
                        hint="give inputs in the range the network was trained on")


def _head_values(output: str, raw: np.ndarray) -> np.ndarray:
    import jax.numpy as jnp

    from archspec.layers.activation import head_output

    return np.asarray(head_output(output, jnp.asarray(raw)), np.float64)


def _describe(output: str, values: np.ndarray, top: int, class_names) -> dict:
    if output not in ("softmax", "sigmoid"):
        return {"values": values.tolist()}
    flat = values.reshape(-1)
    names = _names(output, len(flat), class_names)
    order = np.argsort(-flat, kind="stable")[:max(1, top)]
    return {"top": [{"class": int(i), "name": names[i], "probability": float(flat[i])}
                    for i in order],
            "probabilities": flat.tolist()}


def _names(output: str, width: int, class_names) -> list:
    names = list(class_names or [])
    if output == "sigmoid" and width == 1 and len(names) == 2:
        return [names[1]]  # one sigmoid output: the probability of the second class
    return [names[i] if i < len(names) else None for i in range(width)]
