"""archspec export: each format read back and run by its own runtime, compared here with the
run's forward as archspec computes it, at a batch size the export never saw."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from helpers import ROOT, only_run, run_cli

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "jax2onnx"))
NO_ONNX = "ONNX export needs the export extra: pip install 'archspec[export]'"


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    r = run_cli("train", ROOT / "experiments" / "digits_lenet.yaml", "--epochs", "1",
                "--smoke", "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    return only_run(out)


def own_forward(run, x):
    from archspec.use.evaluate import load_state

    setup, state, _ = load_state(run)
    out = setup.model.apply({"params": state.params, "batch_stats": state.batch_stats}, x,
                            train=False)
    (head,) = [h for h, v in setup.graph.heads.items() if not v.train_only]
    return np.asarray(out[head]), state


def batch(n):
    return np.random.default_rng(n).normal(size=(n, 8, 8, 1)).astype(np.float32)


def exported(run, fmt, path, *extra):
    r = run_cli("export", run, "--format", fmt, "-o", path, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked batch 1" in r.stdout and "checked batch 3" in r.stdout
    return json.loads((path.parent / (path.name + ".json")).read_text())


def test_stablehlo_reloads_and_runs_any_batch(lenet_run, tmp_path):
    from jax import export

    path = tmp_path / "lenet.stablehlo"
    side = exported(lenet_run, "stablehlo", path)
    assert side["input"] == {"name": "input", "shape": ["batch", 8, 8, 1], "dtype": "float32",
                             "layout": "channels last"}
    assert side["preprocessing"]["normalization"]["kind"] in ("standard", "minmax")
    assert side["check"]["ok"] and side["stablehlo"]["platforms"] == ["cpu"]
    program = export.deserialize(bytearray(path.read_bytes()))
    x = batch(5)
    want, _ = own_forward(lenet_run, x)
    (got,) = program.call(x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


def test_safetensors_holds_the_runs_own_weights(lenet_run, tmp_path):
    from archspec.weights.read import read_tensors

    path = tmp_path / "lenet.safetensors"
    exported(lenet_run, "safetensors", path)
    tensors = read_tensors(path)
    _, state = own_forward(lenet_run, batch(1))
    kernel = tensors["params/conv1/kernel"]
    np.testing.assert_array_equal(kernel, np.asarray(state.params["conv1"]["kernel"]))
    assert len(tensors) == sum(len(v) for v in state.params.values())


@pytest.mark.skipif(not HAS_ONNX, reason=NO_ONNX)
def test_onnx_runs_in_onnxruntime_at_any_batch(lenet_run, tmp_path):
    import onnx
    import onnxruntime as ort

    path = tmp_path / "lenet.onnx"
    side = exported(lenet_run, "onnx", path)
    assert side["onnx"]["opset"] == 21 and side["onnx"]["ir_version"] >= 7
    model = onnx.load(str(path))
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}   # no custom call
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = batch(4)
    (got,) = session.run(None, {"input": x})
    want, _ = own_forward(lenet_run, x)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max() + 1e-6


def test_refusals_exit_2(lenet_run, tmp_path):
    r = run_cli("export", lenet_run, "--format", "tflite", "-o", tmp_path / "m.tflite")
    assert r.returncode == 2 and "stablehlo, onnx or safetensors" in r.stderr
    r = run_cli("export", lenet_run, "--format", "safetensors", "--map", "torchvision",
                "-o", tmp_path / "m.safetensors")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no torchvision name map fits spec 'lenet_digits'" in r.stderr.replace("\n", " ")


def test_a_failed_check_removes_the_file_and_exits_1(tmp_path):
    import jax.numpy as jnp

    from archspec.use import export as ex
    from archspec.use import export_formats as fmts

    fn = lambda x: (jnp.tanh(x).sum(axis=1),)  # noqa: E731
    path = tmp_path / "f.stablehlo"
    fmts.write_stablehlo(fn, fmts.input_spec((3,), jnp.float32, "dynamic"), path)
    xs = [np.ones((1, 3), np.float32), np.ones((3, 3), np.float32)]
    good = [[np.asarray(fn(x)[0])] for x in xs]
    assert ex._verify("stablehlo", path, xs, good, None, None, None, None)["ok"]
    bad = [[g[0] + 1e-3] for g in good]
    with pytest.raises(fmts.ExportError) as err:
        ex._verify("stablehlo", path, xs, bad, None, None, None, None)
    assert err.value.exit_code == 1 and "largest difference 0.001" in err.value.message
    assert not path.exists()
