"""data.files: the one way the data package opens a file (a FIFO or device refused on the
open descriptor, never waited on) and reads a .npy (its header's size checked against the
file before anything is allocated)."""
from __future__ import annotations

import os
import resource

import numpy as np
import pytest

from helpers import run_cli, time_limit

from archspec.data import DataError
from archspec.data.files import open_file, read_npy


def npy_declaring(path, shape, dtype="<f4", payload=b"\0" * 64):
    """A .npy whose header declares `shape` but whose data is only `payload`."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(payload)
    return path


def test_a_fifo_or_device_is_refused_on_open(tmp_path):
    fifo = tmp_path / "d.npy"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device")):
        with time_limit(10), pytest.raises(DataError) as info:
            open_file(path, "array file")
        assert info.value.file == str(path) and f"not a regular file ({kind})" in info.value.message


def test_an_npy_declaring_four_terabytes_is_refused_before_allocating(tmp_path):
    bomb = npy_declaring(tmp_path / "x.npy", (10**12, 1))  # 4 TB of float32
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError) as info:
        read_npy(bomb, "input file")
    assert info.value.file == str(bomb)
    assert "declares 4,000,000,000,000 bytes" in info.value.message
    assert "holds 64" in info.value.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_an_npy_with_objects_or_a_damaged_header_is_refused(tmp_path):
    bad = tmp_path / "o.npy"
    npy_declaring(bad, (2,), dtype="|O")
    with pytest.raises(DataError, match="Python objects"):
        read_npy(bad, "input file")
    junk = tmp_path / "j.npy"
    junk.write_bytes(b"\x93NUMPY\x01\x00\xff\xffnot a header")
    with pytest.raises(DataError, match="not a .npy array"):
        read_npy(junk, "input file")


def test_an_npy_reads_back_exactly(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "f.npy", np.asfortranarray(a))
    np.testing.assert_array_equal(read_npy(tmp_path / "a.npy", "input file"), a)
    np.testing.assert_array_equal(read_npy(tmp_path / "f.npy", "input file"), a)


def test_pool_refuses_an_npy_declaring_four_terabytes(tmp_path):
    bomb = npy_declaring(tmp_path / "x.npy", (10**6, 10**6))
    r = run_cli("pool", bomb, "-o", tmp_path / "out.png", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "declares 4,000,000,000,000 bytes" in " ".join(r.stderr.split())
