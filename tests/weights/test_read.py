"""Tensor files: what is read, and what is refused without ever unpickling it."""
from __future__ import annotations

import importlib.util
import pickle
import zipfile

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None


def tensors():
    return {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
            "a.bias": np.array([1.5, -2.0], np.float32)}


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_written_tensors_read_back(tmp_path, suffix):
    from archspec.weights.read import read_tensors, sniff, write_tensors

    path = write_tensors(tensors(), tmp_path / f"w{suffix}")
    got = read_tensors(path)
    assert sniff(path) == suffix[1:]
    assert sorted(got) == ["a.bias", "a.weight"]
    np.testing.assert_array_equal(got["a.weight"], tensors()["a.weight"])


def refused(path, **kw):
    from archspec.weights.errors import WeightsError
    from archspec.weights.read import read_tensors

    with pytest.raises(WeightsError) as err:
        read_tensors(path, **kw)
    assert err.value.exit_code == 2
    return err.value


class Boom:  # unpickling this would run code
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.skipif(HAS_TORCH, reason="torch installed: its weights_only loader is used")
def test_pickle_payload_needs_torch_and_is_never_unpickled(tmp_path, capsys):
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"w": Boom()}, protocol=2))
    err = refused(path)
    assert "torch.load(weights_only=True), and torch is not installed" in err.message
    assert err.hint.startswith("install torch to read .pth")
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_pickle_payload_refused_by_weights_only(tmp_path, capsys):
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"w": Boom()}, protocol=2))
    assert "refused by torch.load(weights_only=True)" in refused(path).message
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_torch_state_dict_read(tmp_path):
    import torch

    from archspec.weights.read import read_tensors

    path = tmp_path / "m.pth"
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in tensors().items()}}, path)
    np.testing.assert_array_equal(read_tensors(path)["a.bias"], tensors()["a.bias"])


def test_torch_zip_container_is_recognised(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"w": Boom()}))
    from archspec.weights.read import sniff

    assert sniff(path) == "torch"


def test_truncated_safetensors(tmp_path):
    from archspec.weights.read import write_tensors

    path = write_tensors(tensors(), tmp_path / "w.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    assert "truncated safetensors file" in refused(path).message
    path.write_bytes(data[:20])
    assert "truncated safetensors file" in refused(path).message


def test_npz_with_objects_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, w=np.array([{"a": 1}], dtype=object))
    err = refused(path)
    assert "refused" in err.message and "pickle" in err.message.lower()


def test_not_a_tensor_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world, not tensors")
    assert "not a tensor file archspec reads" in refused(path).message
    assert "no such file" in refused(tmp_path / "absent.safetensors").message


def test_format_that_does_not_match_the_bytes(tmp_path):
    from archspec.weights.read import write_tensors

    path = write_tensors(tensors(), tmp_path / "w.npz")
    err = refused(path, format="safetensors")
    assert "holds npz, not safetensors" in err.message


def test_damaged_zip(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert "damaged zip archive" in refused(path).message


def test_scalars_and_headers_starting_0x80_round_trip(tmp_path):
    """num_batches_tracked is 0-d in PyTorch; a 128-byte safetensors header starts with the
    byte a pickle starts with, and is still safetensors."""
    from archspec.weights.read import read_tensors, write_tensors

    for n in range(1, 40):  # some key length gives a header of 128 bytes
        path = write_tensors({"k" * n: np.zeros((), np.int64)}, tmp_path / "s.safetensors")
        assert read_tensors(path)["k" * n].shape == ()
