"""Bad data is refused where it is read, with a DataError naming the file and the record,
never a traceback, a hang, a huge allocation or a silently wrong number. Every file here is
written by the test itself; the main paths run through the CLI as a user would."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, run_cli
from PIL import Image

from archspec.data import DataConfig, DataError, load_dataset

F32_MAX = float(np.finfo(np.float32).max)


def cfg(name, path=None, **kw):
    return DataConfig(name=name, path=None if path is None else str(path), **kw)


def refused(config, *, file=None, record=None, match=None, input_shape=None) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(config, input_shape)
    err = info.value
    if file is not None:
        assert err.file == str(file), err
    if record is not None:
        assert err.record == record, err
    if match is not None:
        assert match in str(err), err
    return err


# --- writers ---------------------------------------------------------------------------

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def write_idx(path, array, compress=False):
    a = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[a.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    body = header + a.astype(a.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def idx_header(dims, code=0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def write_png_1bit(path, width, height):
    """A real, complete 1-bit grey PNG of width x height black pixels: a few hundred KB on
    disk that PIL would decode into width*height bytes (and far more once converted)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(6)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_experiment(tmp_path, data: dict, input_shape, classes=2, output="softmax"):
    arch = tmp_path / "arch.yaml"
    arch.write_text(f"name: t\ninput: {{shape: {list(input_shape)}}}\nlayers:\n  - flatten\n"
                    f"  - dense: {{units: {classes}, activation: linear, name: out}}\n"
                    f"heads: {{o: {{from: out, output: {output}}}}}\n")
    exp = tmp_path / "exp.yaml"
    import yaml

    exp.write_text(yaml.safe_dump({"name": "t", "architecture": str(arch), "data": data,
                                   "optimizer": {"name": "adam", "lr": 0.01}, "epochs": 1,
                                   "batch_size": 2, "seed": 0}))
    return exp


def train_refused(tmp_path, data, input_shape, *, timeout=120, **kw):
    """`archspec train --smoke` on the data: exit code 2, a message, no traceback."""
    exp = write_experiment(tmp_path, data, input_shape, **kw)
    r = run_cli("train", exp, "--smoke", "--output", tmp_path / "runs", timeout=timeout)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "data error" in r.stderr, r.stderr
    return " ".join(r.stderr.split())  # the problem box wraps long lines


def nested(depth, leaf=0):
    """A list of two references to a list of two references ...: a few bytes pickled, but
    2**depth leaves once turned into an array."""
    a = [leaf]
    for _ in range(depth):
        a = [a, a]
    return a


# --- 1. the label typing rule ----------------------------------------------------------

def test_npz_whole_number_float_labels_are_classes(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.random.default_rng(0).normal(size=(30, 3)),
             y=(np.arange(30) % 3).astype(np.float64))
    ds = load_dataset(cfg("npz", p))
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.train.y.dtype == np.int32
    # real-valued floats stay regression; several values per example are regression too
    np.savez(p, x=np.ones((30, 3)), y=np.linspace(0, 1, 30))
    assert load_dataset(cfg("npz", p)).task == "regression"
    np.savez(p, x=np.ones((30, 3)), y=np.ones((30, 2)))
    reg = load_dataset(cfg("npz", p))
    assert reg.task == "regression" and reg.train.y.shape[1:] == (2,)
    np.savez(p, x=np.ones((30, 3)), y=(np.arange(30) % 3).astype(np.float64))
    assert load_dataset(cfg("npz", p, options={"task": "regression"})).task == "regression"


def test_npz_negative_whole_number_targets_point_at_task_regression(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((10, 2)), y=np.array([3., 1., -4., 1., 5., 9., 2., 6., 5., 3.]))
    err = refused(cfg("npz", p), file=p, record="y[2]", match="label -4 is negative")
    assert "task: regression" in err.hint


def test_csv_integer_target_with_many_values_is_classes(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,y\n" + "".join(f"{i},{i * 0.5},{i}\n" for i in range(120)))
    ds = load_dataset(cfg("csv", p))
    assert ds.task == "classification" and ds.num_classes == 120
    reg = load_dataset(cfg("csv", p, options={"task": "regression"}))
    assert reg.task == "regression"
    p.write_text("a,b,y\n" + "".join(f"{i},{i * 0.5},{i * 0.25}\n" for i in range(120)))
    assert load_dataset(cfg("csv", p)).task == "regression"  # real values: regression


# --- 2. non-finite and float32-overflowing values --------------------------------------

def test_csv_cell_beyond_float32_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    rows = [f"{i},{i},{i % 2}" for i in range(20)]
    rows[6] = "1e39,6,0"
    p.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    text = train_refused(tmp_path, {"name": "csv", "path": str(p)}, [2])
    assert f"{p}:line 8, column 'a'" in text
    assert "'1e39' is beyond the float32 range (±3.4e+38)" in text
    # a regression target is checked the same way
    rows[6] = "6,6,-1e39"
    p.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    refused(cfg("csv", p, options={"task": "regression"}), file=p,
            record="line 8, column 'y'", match="beyond the float32 range")


def test_npz_float64_beyond_float32_is_refused(tmp_path):
    p = tmp_path / "d.npz"
    x = np.zeros((12, 2))
    x[5, 1] = 1e300
    np.savez(p, x=x, y=np.arange(12) % 2)
    text = train_refused(tmp_path, {"name": "npz", "path": str(p)}, [2])
    assert f"{p}:x[5]" in text and "'x' holds 1e+300, beyond the float32 range" in text
    y = np.linspace(0, 1, 12)
    y[7] = -1e300
    np.savez(p, x=np.zeros((12, 2)), y=y)
    refused(cfg("npz", p), file=p, record="y[7]", match="'y' holds -1e+300")
    np.savez(p, x=np.zeros((12, 2)), y=np.where(np.arange(12) == 3, np.inf, y))
    refused(cfg("npz", p), file=p, record="y[3]", match="'y' holds inf")


def test_idx_float_images_with_nan_or_overflow_are_refused(tmp_path):
    labels = write_idx(tmp_path / "lab.idx", (np.arange(8) % 2).astype(np.uint8))
    images = np.zeros((8, 3, 3), np.float32)
    images[4, 1, 2] = np.nan
    img = write_idx(tmp_path / "img.idx", images)
    text = train_refused(tmp_path, {"name": "idx", "path": str(img),
                                    "options": {"labels": str(labels)}}, [3, 3, 1])
    assert f"{img}:index 4" in text and "holds NaN" in text
    big = np.zeros((8, 3, 3), np.float64)
    big[6, 0, 0] = 1e300
    img64 = write_idx(tmp_path / "img64.idx", big, compress=True)
    refused(cfg("idx", img64, options={"labels": str(labels)}), file=img64,
            record="index 6", match="beyond the float32 range")


# --- 3. IDX headers that cannot be right -----------------------------------------------

def test_idx_zero_dimension_is_refused(tmp_path):
    labels = write_idx(tmp_path / "lab.idx", np.zeros(10, np.uint8))
    img = tmp_path / "zero.idx"
    img.write_bytes(idx_header((10, 0, 28)))
    text = train_refused(tmp_path, {"name": "idx", "path": str(img),
                                    "options": {"labels": str(labels)}}, [28, 28, 1])
    assert f"{img}:" in text and "the header declares a dimension of 0: (10, 0, 28)" in text


def test_idx_dimensions_beyond_the_file_are_refused(tmp_path):
    labels = write_idx(tmp_path / "lab.idx", np.zeros(10, np.uint8))
    huge = tmp_path / "huge.idx"  # 2**96 bytes declared: the product overflows int64
    huge.write_bytes(idx_header((2**32 - 1,) * 3) + b"\0" * 64)
    err = refused(cfg("idx", huge, options={"labels": str(labels)}), file=huge,
                  match="the header declares 4294967295 records")
    assert "more than the file holds (64 bytes after the header)" in err.message
    # compressed: refused from the header alone, without inflating the data
    gz = tmp_path / "huge.idx.gz"
    gz.write_bytes(gzip.compress(idx_header((60000, 30000, 30000)) + b"\0" * 1000))
    refused(cfg("idx", gz, options={"labels": str(labels)}), file=gz,
            match="more than the compressed file can hold")
    # a plain mismatch keeps its exact message
    cut = tmp_path / "cut.idx"
    cut.write_bytes(idx_header((10, 4, 4)) + b"\0" * 100)
    refused(cfg("idx", cut, options={"labels": str(labels)}), file=cut, record="index 6",
            match="truncated")


# --- 4. 8-bit and 16-bit images in one folder ------------------------------------------

def test_image_folder_scales_16_bit_to_the_8_bit_range(tmp_path):
    root = tmp_path / "imgs"
    for name in ("eight", "sixteen"):
        (root / name).mkdir(parents=True)
    for i, v in enumerate((0, 128, 255)):
        Image.fromarray(np.full((4, 4), v, np.uint8)).save(root / "eight" / f"{i}.png")
    for i, v in enumerate((0, 32896, 65535)):  # 32896 = 128 * 257
        Image.fromarray(np.full((4, 4), v, np.uint16)).save(root / "sixteen" / f"{i}.png")
    assert Image.open(root / "sixteen" / "2.png").mode == "I;16"
    from archspec.data.sources import image_folder

    def read(**options):
        c = cfg("image_folder", root, options=options)
        raw = image_folder.load(c, c.source_options(), None, 0)
        return sorted((int(y), float(x.max()), float(x.min())) for x, y in zip(raw.x, raw.y))

    want = [(0, 0.0, 0.0), (0, 128.0, 128.0), (0, 255.0, 255.0)]
    assert read() == want + [(1, *v[1:]) for v in want]
    assert read(mode="RGB") == want + [(1, *v[1:]) for v in want]  # no clipping at 255


def test_image_folder_refuses_unscalable_pixels_mixed_with_8_bit(tmp_path):
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for k in "ab":
        Image.fromarray(np.full((4, 4), 7, np.uint8)).save(root / k / "0.png")
    odd = root / "b" / "1.tif"
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(odd)
    refused(cfg("image_folder", root, options={"extensions": [".png", ".tif"]}), file=odd,
            match="32-bit float pixels")


# --- 5. CIFAR pickles that would expand hugely -----------------------------------------

def _codec_chain(depth: int) -> bytes:
    """{b'data': hex(hex(...hex(b'x'))), b'labels': []}: each level doubles the bytes."""
    body = b"C\x01x"
    for _ in range(depth):
        body = b"h\x00(" + body + b"X\x03\x00\x00\x00hext" + b"R"
    return (b"\x80\x02c_codecs\nencode\nq\x000}(C\x04data" + body
            + b"C\x06labels]u.")


def _call(module: str, name: str, args: bytes) -> bytes:
    """{b'data': module.name(*args), b'labels': []} as protocol 2 opcodes."""
    return (b"\x80\x02}(C\x04data" + f"c{module}\n{name}\n".encode() + args + b"R"
            + b"C\x06labels]u.")


def test_cifar_bombs_are_refused_without_expanding(tmp_path):
    rows = np.zeros((2, 3072), np.uint8)
    bombs = {
        "nested_labels": pickle.dumps({b"data": rows, b"labels": nested(30)}, 2),
        "nested_data": pickle.dumps({b"data": nested(30), b"labels": [0, 1]}, 2),
        "codec_chain": _codec_chain(40),
        "ndarray_call": _call("numpy", "ndarray", b"(J\x00\x00\x00\x40\x85t"),
        "reconstruct": _call("numpy.core.multiarray", "_reconstruct",
                             b"(cnumpy\nndarray\n\x8a\x05\x00\x00\x00\x00\x10\x85C\x01bt"),
    }
    for name, blob in bombs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "data_batch_1").write_bytes(blob)
        assert len(blob) < 10_000  # two real rows of 3072 bytes, or less
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB, all told
        from archspec.data import DataConfig, DataError, load_dataset
        for name in {list(bombs)!r}:
            try:
                load_dataset(DataConfig(name="cifar", path=sys.argv[1] + "/" + name))
                print(name, "LOADED")
            except DataError as exc:
                print(name, "REFUSED", exc.message)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                       text=True, timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(lines) == set(bombs), r.stdout
    for name, outcome in lines.items():
        assert outcome.startswith("REFUSED not a CIFAR batch"), (name, outcome)
    assert "'labels' must be a flat list" in lines["nested_labels"]
    assert "'data' must be a uint8 array" in lines["nested_data"]
    assert "only latin1 text is decoded" in lines["codec_chain"]
    assert "refused to call numpy.ndarray" in lines["ndarray_call"]
    assert "declares an array of" in lines["reconstruct"]


def test_cifar_bomb_through_the_cli(tmp_path):
    folder = tmp_path / "c10"
    folder.mkdir()
    write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8),
                                           b"labels": nested(30)})
    text = train_refused(tmp_path, {"name": "cifar", "path": str(folder)}, [32, 32, 3],
                         timeout=60, classes=10)
    assert f"{folder / 'data_batch_1'}" in text
    assert "not a CIFAR batch: 'labels' must be a flat list of class ids" in text


# --- 6. FIFOs and other non-regular files ----------------------------------------------

def test_fifo_as_a_data_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "d.npz"
    os.mkfifo(fifo)
    text = train_refused(tmp_path, {"name": "npz", "path": str(fifo)}, [2], timeout=60)
    assert f"{fifo}:" in text and "npz file is not a regular file (a FIFO)" in text
    folder = tmp_path / "c10"
    folder.mkdir()
    os.mkfifo(folder / "data_batch_1")
    refused(cfg("cifar", folder), file=folder / "data_batch_1", match="not a regular file")
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    os.mkfifo(root / "a" / "0.png")
    refused(cfg("image_folder", root), file=root / "a" / "0.png",
            match="not a regular file (a FIFO)")


# --- 7. predict and the pooling picture ------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    r = run_cli("train", ROOT / "experiments" / "digits_logistic.yaml", "--epochs", "1",
                "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run


def predict_refused(run, path) -> str:
    r = run_cli("predict", run, path, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return " ".join(r.stderr.split())


def test_predict_refuses_a_decompression_bomb(digits_run, tmp_path):
    bomb = write_png_1bit(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 1_000_000
    text = predict_refused(digits_run, bomb)
    assert f"{bomb}" in text
    assert "image declares 900,000,000 pixels, more than the 50,000,000 read" in text
    big = write_png_1bit(tmp_path / "big.png", 8000, 8000)  # below PIL's own limit
    text = predict_refused(digits_run, big)
    assert "image declares 8000x8000 = 64,000,000 pixels, more than the 50,000,000 read" in text


def test_predict_refuses_non_finite_inputs(digits_run, tmp_path):
    a = np.zeros((3, 8, 8, 1), np.float32)
    a[1, 2, 3, 0] = np.nan
    npy = tmp_path / "batch.npy"
    np.save(npy, a)
    text = predict_refused(digits_run, npy)
    assert f"{npy}:index 1" in text and "the array holds NaN" in text
    b = np.zeros((8, 8, 1))
    b[0, 0, 0] = 1e300
    np.save(npy, b)
    text = predict_refused(digits_run, npy)
    assert "the array holds 1e+300, beyond the float32 range" in text
    csv = tmp_path / "rows.csv"
    csv.write_text(",".join(f"p{i}" for i in range(64)) + "\n"
                   + ",".join(["0"] * 63 + ["1e39"]) + "\n")
    text = predict_refused(digits_run, csv)
    assert f"{csv}:line 2, column 'p63'" in text and "beyond the float32 range" in text


def test_pool_refuses_a_decompression_bomb_and_a_fifo(tmp_path):
    bomb = write_png_1bit(tmp_path / "bomb.png", 30000, 30000)
    r = run_cli("pool", bomb, "-o", tmp_path / "out.png", timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert "image declares 900,000,000 pixels, more than the 50,000,000 read" in text
    assert not (tmp_path / "out.png").exists()
    from archspec.viz import VizError
    from archspec.viz.pool import load

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(VizError, match="not a regular file"):
        load(fifo)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(VizError, match="holds NaN"):
        load(nan)


def test_predict_reads_the_same_images_as_before(tmp_path):
    """The size check leaves ordinary images alone (and image files still read back)."""
    from archspec.use.predict import read_image

    p = tmp_path / "ok.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(p)
    x = read_image(p, (8, 8, 1), 16.0)
    assert x.shape == (8, 8, 1) and float(x.max()) == 16.0
    assert Path(p).exists()
