"""Several train steps per dispatch (`steps_per_execution`), the checkpoint policy, and
training-only heads in evaluation and prediction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, only_run, read_records, run_cli

SPEC = ("name: t\ninput: {shape: [6]}\ndefaults: {activation: tanh}\n"
        "layers:\n  - dense: 8\n  - dropout: 0.3\n  - dense: {units: 3, activation: linear}\n")


@pytest.fixture(scope="module")
def tiny():
    import jax.numpy as jnp

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    from archspec.experiment.config import Optimizer
    from archspec.engine.optim import make_optimizer
    from archspec.engine.step import HeadLoss, make_mesh, make_multi_step, make_train_step

    g = load_architecture_text(SPEC)
    model = build_model(g)
    heads = [HeadLoss("output", "categorical_crossentropy", "softmax", 1.0)]
    tx, _ = make_optimizer(Optimizer(name="adam", lr=0.05), 100)
    mesh = make_mesh()
    return dict(g=g, model=model, tx=tx, example=jnp.zeros((1, 6)),
                single=make_train_step(model, heads, tx, mesh),
                multi=make_multi_step(model, heads, tx, mesh))


def _batches(k, n=8):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(k, n, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=(k, n)).astype(np.int32)
    w = np.ones((k, n), np.float32)
    w[-1, n // 2:] = 0  # the last batch is a padded partial one
    return x, y, w


def _state(t):
    from archspec.engine.step import init_state

    return init_state(t["model"], t["g"], t["tx"], 0, t["example"])


def test_a_chunk_of_steps_equals_the_same_steps_one_by_one(tiny):
    """Parameters, step count and the epoch's example-weighted metric sums of a scanned
    chunk equal single steps (dropout and all), and the per-step health comes stacked."""
    import jax

    x, y, w = _batches(4)
    state, sums = _state(tiny), {}
    for i in range(4):
        state, metrics, _ = tiny["single"](state, x[i], y[i], w[i])
        for k, v in jax.device_get(metrics).items():
            sums[k] = sums.get(k, 0.0) + float(v) * w[i].sum()
    chunk, csums, health = tiny["multi"](_state(tiny), x, y, w, np.ones(4, bool))
    assert int(chunk.step) == int(state.step) == 4
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(chunk.params)),
                    jax.tree_util.tree_leaves(jax.device_get(state.params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for k, v in jax.device_get(csums).items():
        np.testing.assert_allclose(v, sums[k], rtol=1e-5)
    assert jax.device_get(health["loss"]).shape == (4,)


def test_slots_past_the_chunk_change_nothing(tiny):
    """A chunk of 4 slots holding 2 batches trains exactly the 2 batches."""
    import jax

    x, y, w = _batches(4)
    two, s2, _ = tiny["multi"](_state(tiny), x, y, w, np.array([1, 1, 0, 0], bool))
    ref = _state(tiny)
    for i in range(2):
        ref, _, _ = tiny["single"](ref, x[i], y[i], w[i])
    assert int(two.step) == 2
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get((two.params, two.opt_state))),
                    jax.tree_util.tree_leaves(jax.device_get((ref.params, ref.opt_state)))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_chunks_end_at_checkpoints_and_at_the_last_step():
    from archspec.engine.epoch import chunks

    batches = [(np.full((2, 1), b), np.zeros(2), np.ones(2), 2) for b in range(10)]
    got = [(c.last, c.arrays[3].tolist()) for c in chunks(iter(batches), 4, 0, 0, 6, 9)]
    # steps 1-4, 5-6 (a checkpoint at 6), 7-9 (the last step of the run)
    assert got == [(3, [True] * 4), (5, [True, True, False, False]),
                   (8, [True, True, True, False])]
    resumed = [c.last for c in chunks(iter(batches[7:]), 4, 7, 7, None, 100)]
    assert resumed == [9]


@pytest.mark.parametrize("setting, macs, spe, platform, streamed, k", [
    ("auto", 1_000, 30, "cpu", False, 15),    # cheap: up to 16, balanced (2 chunks of 15)
    ("auto", 1_000, 5, "cpu", False, 5),      # never more than an epoch
    ("auto", 10**9, 30, "cpu", False, 1),     # a step costs more than its dispatch
    ("auto", 10**9, 30, "gpu", False, 15),    # ... but not on an accelerator
    (8, 10**9, 30, "cpu", False, 8),          # as given, balanced: 30 = 4 chunks of 8 slots
    (1, 1_000, 30, "cpu", False, 1),
    ("auto", 1_000, 30, "cpu", True, 1),      # decoding bounds the loop; memory stays bounded
])
def test_steps_per_execution(setting, macs, spe, platform, streamed, k):
    from archspec.engine.epoch import steps_per_execution

    class G:
        def total(self, attr):
            return macs

    assert steps_per_execution(setting, G(), 32, spe, platform, streamed) == k


def _latest_steps(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints/latest").iterdir() if p.name.isdigit())


def test_chunked_training_matches_single_steps_and_checkpoints_follow_the_policy(tmp_path):
    """`archspec train` with 4 steps per dispatch ends where one step per dispatch ends, with
    the same records (an epoch's mean loss to float rounding). `latest` is written where
    `every_steps` asks and at the end; by default (every_minutes: 1) a short run writes it
    once, at the end, instead of every epoch."""
    runs = {}
    for k, extra in ((1, ["checkpoint.every_steps=20", "checkpoint.keep=10"]), (4, [])):
        out = tmp_path / f"k{k}"
        sets = [a for e in [f"steps_per_execution={k}", "eval_splits=[val]", "expect={}",
                            *extra] for a in ("--set", e)]
        r = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "2",
                    "--output", out, *sets)
        assert r.returncode == 0, r.stderr + r.stdout
        runs[k] = only_run(out)
    train = {k: [rec for rec in read_records(run) if rec["split"] == "train"]
             for k, run in runs.items()}
    assert [r["step"] for r in train[1]] == [r["step"] for r in train[4]]
    for a, b in zip(train[1], train[4]):
        for key in a:
            if key.startswith(("loss", "accuracy")):
                assert a[key] == pytest.approx(b[key], rel=1e-4), key
    last = train[1][-1]["step"]
    assert _latest_steps(runs[1]) == [*range(20, last, 20), last]
    assert _latest_steps(runs[4]) == [last]


AUX = """name: aux
input: {shape: [8, 8, 1]}
defaults: {activation: relu}
layers:
  - conv: {maps: 4, kernel: 3}
  - flatten
  - dense: {units: 10, activation: linear, name: logits}
heads:
  digit: {from: logits, output: softmax}
  aux: {from: logits, output: softmax, loss_weight: 0.3, train_only: true}
"""


def test_a_train_only_head_is_trained_but_not_evaluated_or_predicted(tmp_path):
    arch = tmp_path / "aux.yaml"
    arch.write_text(AUX)
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: aux\narchitecture: {arch}\ndata: {{name: digits}}\nsteps: 6\n"
                   f"batch_size: 32\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stderr + r.stdout
    run = only_run(tmp_path / "runs")
    records = read_records(run)
    train = next(rec for rec in records if rec["split"] == "train")
    assert "loss_aux" in train and "loss_digit" in train  # trained with both
    for split in ("val", "test"):
        rec = next(rec for rec in records if rec["split"] == split)
        assert "loss_digit" in rec and "loss_aux" not in rec and "accuracy_aux" not in rec
        assert rec["loss"] == pytest.approx(rec["loss_digit"])  # the aux loss is not added
    r = run_cli("predict", run, ROOT / "docs/img/three.png", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    assert set(json.loads(r.stdout)["heads"]) == {"digit"}


def test_a_best_within_best_every_minutes_is_held_then_written_when_due_or_forced():
    """CheckpointPolicy: the first best is written at once; one that comes sooner than
    `best_every_minutes` after the last write is held as a host copy (a later one replaces
    it) and written once due, or at the end."""
    import types

    import jax.numpy as jnp

    from archspec.engine.epoch import CheckpointPolicy

    written = []
    store = types.SimpleNamespace(save=lambda which, state, position, then=None:
                                  written.append((which, float(state["w"]), position)))
    config = types.SimpleNamespace(every_steps=None, every_minutes=1.0, best_every_minutes=1.0)
    policy = CheckpointPolicy(store, config)
    policy.best({"w": jnp.float32(1)}, {"epoch": 1})
    policy.best({"w": jnp.float32(2)}, {"epoch": 2})
    policy.best({"w": jnp.float32(3)}, {"epoch": 3})
    policy.write_held()                       # not due yet
    assert written == [("best", 1.0, {"epoch": 1})]
    assert isinstance(policy.held[0]["w"], np.ndarray)  # off the device: safe from donation
    policy.best_at -= 61                      # a minute later
    policy.write_held()
    assert written[-1] == ("best", 3.0, {"epoch": 3}) and policy.held is None
    policy.best({"w": jnp.float32(4)}, {"epoch": 4})
    policy.write_held(force=True)             # the end of training
    assert [w[1] for w in written] == [1.0, 3.0, 4.0]
