"""`archspec predict`: a trained run's predictions for files, as a user would ask for them.

Tiny runs are trained through the CLI; the examples written to files are the run's own
test examples (un-normalised back to the data set's units), so the predictions from the
files must agree with the model's own evaluation of those examples.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ROOT, run_cli
from PIL import Image


def train(exp: str, out) -> str:
    r = run_cli("train", ROOT / "experiments" / f"{exp}.yaml", "--epochs", "2", "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    return str(run)


def predict_json(*args):
    r = run_cli("predict", *args, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def own_outputs(run):
    """The run's test split (normalised), its raw values, and the model's own outputs."""
    from archspec.data import normalization_terms
    from archspec.use.evaluate import load_state
    from archspec.engine.measure import evaluate

    setup, state, _ = load_state(run)
    split = setup.dataset.test
    _, outputs = evaluate(setup, state, split)
    terms = normalization_terms(setup.dataset.norm_stats)
    raw = split.x if terms is None else split.x * terms[1] + terms[0]
    return setup, split, raw, outputs


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return train("digits_logistic", tmp_path_factory.mktemp("digits"))


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_predict_image_and_npy_match_the_models_own_predictions(digits_run, tmp_path):
    setup, _, raw, outputs = own_outputs(digits_run)
    pixels = np.round(raw)                         # the digits are whole numbers 0..16
    assert np.abs(raw - pixels).max() < 1e-3 and pixels.max() <= 16
    probs = softmax(outputs["classes"].astype(np.float64))
    # a confidently classified example for the PNG (8-bit pixels round 0..16 slightly)
    srt = np.sort(probs, axis=1)
    i = int(np.argmax(srt[:, -1] - srt[:, -2]))
    png = tmp_path / "digit.png"
    Image.fromarray(np.round(pixels[i, :, :, 0] * 255 / 16).astype(np.uint8)).save(png)
    batch = tmp_path / "batch.npy"
    np.save(batch, pixels[:6].astype(np.float32))
    one = tmp_path / "one.npy"
    np.save(one, pixels[i, :, :, 0].astype(np.uint8))  # (8, 8), integers: still normalised

    out = predict_json(digits_run, png, batch, one, "--top", "2", "--checkpoint", "latest")
    assert out["checkpoint"] == "latest"
    preds = out["predictions"]
    assert [p["input"] for p in preds] == [str(png)] + [str(batch)] * 6 + [str(one)]
    assert [p.get("index") for p in preds[1:7]] == list(range(6))
    for p in preds:
        head = p["heads"]["classes"]
        assert abs(sum(head["probabilities"]) - 1.0) < 1e-5
        assert len(head["top"]) == 2
        assert head["top"][0]["probability"] >= head["top"][1]["probability"]
        assert head["top"][0]["name"] == setup.dataset.class_names[head["top"][0]["class"]]
    want = probs.argmax(1)
    assert preds[0]["heads"]["classes"]["top"][0]["class"] == want[i]
    assert preds[-1]["heads"]["classes"]["top"][0]["class"] == want[i]
    np.testing.assert_allclose(preds[-1]["heads"]["classes"]["probabilities"], probs[i],
                               atol=1e-5)
    for k, p in enumerate(preds[1:7]):
        assert p["heads"]["classes"]["top"][0]["class"] == want[k]
        np.testing.assert_allclose(p["heads"]["classes"]["probabilities"], probs[k], atol=1e-5)


def test_predict_errors_and_text_table(digits_run, tmp_path):
    bad = tmp_path / "x.txtx"
    bad.write_text("1")
    r = run_cli("predict", digits_run, bad)
    assert r.returncode == 2 and "cannot read '.txtx' files" in r.stderr
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 7), np.float32))
    r = run_cli("predict", digits_run, wrong)
    assert r.returncode == 2 and "does not fit the network's input shape (8, 8, 1)" in r.stderr
    # the table the command prints without --json
    from rich.console import Console

    from archspec.ui.predictions import print_predictions

    result = {"run": "runs/x/1", "checkpoint": "best", "step": 7, "heads": {"classes": "softmax"},
              "predictions": [{"input": "a.npy", "index": 1, "heads": {"classes": {
                  "top": [{"class": 3, "name": "3", "probability": 0.75},
                          {"class": 5, "name": "5", "probability": 0.25}],
                  "probabilities": [0, 0, 0, 0.75, 0, 0.25]}}}]}
    console = Console(record=True, width=100)
    print_predictions(result, console)
    text = console.export_text()
    assert "best checkpoint, step 7" in text and "a.npy [index 1]" in text
    assert "3 75.0%  5 25.0%" in text


def test_predict_regression_from_csv(tmp_path):
    run = train("function_approx", tmp_path / "runs")
    csv = tmp_path / "points.csv"
    xs = [-2.5, 0.0, 0.5, 3.0]
    csv.write_text("x\n" + "\n".join(str(v) for v in xs) + "\n")
    out = predict_json(run, csv)
    preds = out["predictions"]
    assert [p["line"] for p in preds] == [2, 3, 4, 5] and out["heads"] == {"y": "linear"}

    import jax.numpy as jnp

    from archspec.use.evaluate import load_state

    setup, state, _ = load_state(run)
    want = setup.model.apply({"params": state.params, "batch_stats": state.batch_stats},
                             jnp.asarray(xs, jnp.float32)[:, None])["y"]
    got = np.array([p["heads"]["y"]["values"] for p in preds])
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)


def test_a_kept_split_is_copied_to_the_devices_once_and_measures_the_same(digits_run):
    """Validation after every epoch reuses the val batches placed on the devices by the
    first one (engine/measure.KeptSplit); the metrics are those of a fresh copy."""
    from archspec.engine.measure import KeptSplit, evaluate
    from archspec.use.evaluate import load_state

    setup, state, _ = load_state(digits_run)
    kept = KeptSplit()
    fresh, _ = evaluate(setup, state, setup.dataset.test, outputs=False)
    first, _ = evaluate(setup, state, setup.dataset.test, outputs=False, kept=kept)
    placed = kept.placed
    assert placed and len(placed) == -(-len(setup.dataset.test.x) // setup.exp.batch_size)
    again, _ = evaluate(setup, state, setup.dataset.test, outputs=False, kept=kept)
    assert kept.placed is placed  # not copied again
    assert fresh == first == again
