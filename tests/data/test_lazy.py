"""Image folders decoded as batches need them: the same values as the in-memory path,
headers checked before step 1, and memory bounded whatever the folder's size."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

from archspec.data import (
    DataConfig,
    DataError,
    Stream,
    batches,
    load_dataset,
    to_network,
)
from archspec.data import lazy as lazy_mod
from archspec.data.lazy import LazyExamples


def folder(root, n=60, size=(20, 24), classes=3, mode="RGB"):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"class{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        shape = (size[0], size[1], 3) if mode == "RGB" else size
        a = rng.uniform(0, 255, shape).astype(np.uint8)
        Image.fromarray(a).save(d / f"{i}.png")
    return root


def load(path, in_memory, shape=(16, 16, 3), **kw):
    cfg = DataConfig(name="image_folder", path=str(path), options={"in_memory": in_memory}, **kw)
    return load_dataset(cfg, shape, seed=1)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return folder(tmp_path_factory.mktemp("imgs"))


@pytest.mark.parametrize("normalize", ["standard", "minmax", "none"])
def test_lazy_splits_hold_the_in_memory_values(images, normalize):
    """Streamed 8-bit images stay raw pixels until the device; normalised there (in jax,
    as the train step does) they are the in-memory path's host-normalised values."""
    eager, lazy = load(images, True, normalize=normalize), load(images, False, normalize=normalize)
    assert isinstance(lazy.train.x, LazyExamples) and isinstance(eager.train.x, np.ndarray)
    assert lazy.example().dtype == eager.example().dtype == np.float32
    for name in ("train", "val", "test"):
        e, z = getattr(eager, name), getattr(lazy, name)
        assert z.x.shape == e.x.shape and z.x.dtype == np.uint8 and e.x.dtype == np.float32
        on_device = np.asarray(jax.jit(lambda x: to_network(x, lazy.norm_stats))(z.x[:]))
        np.testing.assert_allclose(on_device, e.x, rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(z.y, e.y)
    for key in ("mean", "std", "min", "max"):
        if key in eager.norm_stats:
            np.testing.assert_allclose(lazy.norm_stats[key], eager.norm_stats[key], rtol=1e-12)


def test_streamed_batches_are_the_in_memory_batches_from_any_start(images):
    eager, lazy = load(images, True), load(images, False)
    want = list(batches(eager.train, 7, shuffle=True, seed=3, epoch=2))
    for start in (0, 3):
        got = list(batches(lazy.train, 7, shuffle=True, seed=3, epoch=2, start=start))
        assert len(got) == len(want) - start
        for (gx, gy), (wx, wy) in zip(got, want[start:]):
            assert gx.dtype == np.uint8
            np.testing.assert_allclose(to_network(gx, lazy.norm_stats), wx, rtol=1e-6, atol=1e-5)
            np.testing.assert_array_equal(gy, wy)


def test_grain_workers_serve_every_epoch_of_a_run_from_one_pipeline(images):
    """Stream's worker processes start once per run: epoch after epoch comes from the same
    pipeline, with exactly the batches decoding on the calling thread gives; a request
    that does not continue where the last stopped (a resume) starts a new pipeline."""
    lazy = load(images, False)
    stream = Stream(lazy.train, 8, seed=0, epochs=3, workers=2)
    try:
        got = {(0, 0): list(stream.epoch(0))}
        pipeline = stream._it
        got[1, 0] = list(stream.epoch(1))
        assert stream._it is pipeline  # no new workers for the next epoch
        got[2, 3] = list(stream.epoch(2, start=3))
        assert stream._it is not pipeline
    finally:
        stream.close()
    for (epoch, start), there in got.items():
        here = list(batches(lazy.train, 8, shuffle=True, seed=0, epoch=epoch, start=start))
        assert len(here) == len(there) > 0
        for (a, ya), (b, yb) in zip(here, there):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ya, yb)


def test_headers_are_checked_before_any_pixel_is_decoded(tmp_path):
    root = folder(tmp_path / "mixed", n=6)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(root / "class0" / "grey.png")
    with pytest.raises(DataError, match="channels"):
        load(root, False)
    with pytest.raises(DataError, match="expected 16x16"):
        load(folder(tmp_path / "sizes", n=6), False, resize=False)


def test_auto_mode_streams_only_what_would_not_fit(images, monkeypatch):
    assert isinstance(load(images, None).train.x, np.ndarray)
    monkeypatch.setattr(lazy_mod, "MEMORY_BUDGET", 1000)
    from archspec.data.sources import image_folder

    monkeypatch.setattr(image_folder, "MEMORY_BUDGET", 1000)
    assert isinstance(load(images, None).train.x, LazyExamples)


def test_training_on_a_folder_larger_than_memory_keeps_memory_bounded(tmp_path):
    """6,000 images of 160x160x3 are 1.84 GB as float32; the streamed run must peak far
    below that (the in-memory path decodes them all before step 1 and peaks near three
    times it). A few steps without normalisation statistics or evaluation decode little,
    so the test is quick; decoding everything first would still show in the peak."""
    root = tmp_path / "big"
    rng = np.random.default_rng(0)
    tiles = [Image.fromarray(rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8))
             .resize((160, 160), Image.Resampling.BILINEAR) for _ in range(8)]
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
    for i in range(6000):
        tiles[i % 8].save(root / f"c{i % 2}" / f"{i}.jpg", quality=80)
    decoded = 6000 * 160 * 160 * 3 * 4
    exp = tmp_path / "big.yaml"
    exp.write_text(textwrap.dedent(f"""\
        name: big
        architecture:
          name: tiny
          input: {{shape: [160, 160, 3]}}
          layers:
            - conv: {{maps: 4, kernel: 8, stride: 8}}
            - relu
            - pool: {{op: avg, global: true}}
            - dense: {{units: 2, activation: linear}}
          heads:
            out: {{output: softmax}}
        data: {{name: image_folder, path: {root}, normalize: none, val_fraction: 0.02,
               test_fraction: 0.02}}
        steps: 10
        eval_splits: []
        batch_size: 64
        output: {tmp_path / 'runs'}
        """))
    # VmHWM: the peak RSS of this process's own memory (getrusage's ru_maxrss survives
    # exec, so it would report the test runner's peak)
    probe = textwrap.dedent("""\
        import sys
        from archspec.cli import main
        if __name__ == "__main__":
            sys.argv = ["archspec", "train", sys.argv[1]]
            try:
                main()
            except SystemExit as exc:
                print("EXIT", exc.code)
            hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
            print("PEAK", int(hwm.split()[1]) * 1024)
        """)
    script = tmp_path / "probe.py"
    script.write_text(probe)
    out = subprocess.run([sys.executable, str(script), str(exp)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, env={"COLUMNS": "120",
                                                                "PATH": "/usr/bin:/bin"})
    assert "EXIT 0" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    peak = int(out.stdout.rsplit("PEAK", 1)[1].split()[0])
    assert peak < decoded / 2, f"peak RSS {peak / 2**20:.0f} MiB for {decoded / 2**20:.0f} MiB of images"


def test_training_on_streamed_pixels_equals_training_on_the_normalised_arrays(images, tmp_path):
    """The streamed run's raw pixels are decoded in grain workers kept over its two
    epochs and normalised inside the jitted steps (train with augmentation, validation,
    test); it must end where the in-memory run ends."""
    from archspec.engine.reporter import NullReporter
    from archspec.experiment import load as experiment
    from archspec.runs.records import read_metrics
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    ends = {}
    for in_memory in (True, False):
        exp = tmp_path / f"e{in_memory}.yaml"
        exp.write_text(textwrap.dedent(f"""\
            name: e{in_memory}
            architecture:
              name: tiny
              input: {{shape: [16, 16, 3]}}
              layers:
                - conv: {{maps: 4, kernel: 3}}
                - relu
                - pool: {{op: avg, global: true}}
                - dense: {{units: 3, activation: linear}}
              heads:
                out: {{output: softmax}}
            data: {{name: image_folder, path: {images}, options: {{in_memory: {str(in_memory).lower()}}},
                   val_fraction: 0.15, test_fraction: 0.15, workers: {0 if in_memory else 2}}}
            augment: [{{flip: {{mode: horizontal}}}}]
            steps: 12
            steps_per_execution: 1
            batch_size: 8
            output: {tmp_path / 'runs'}
            """))
        result = fit(prepare_loaded(experiment.load(exp)), NullReporter())
        assert result.outcome == "finished"
        ends[in_memory] = {r["split"]: r for r in read_metrics(result.run_dir)
                           if r.get("split") in ("val", "test")}
    assert set(ends[True]) == {"val", "test"}
    for split, want in ends[True].items():
        for key in ("loss", "accuracy_out"):
            np.testing.assert_allclose(ends[False][split][key], want[key], rtol=1e-5)


def test_a_streamed_folder_is_checked_and_measured_once_until_a_file_changes(tmp_path,
                                                                              monkeypatch,
                                                                              capfd):
    """A large folder's header check and statistics pass took minutes at every start
    (200,000 JPEGs). Both are kept in the data cache, keyed by the listing: a second load
    opens no header and decodes nothing, with the same statistics; a changed file makes
    both again. The pass says what it does."""
    from archspec.data import normalize
    from archspec.data.sources import image_folder

    root = folder(tmp_path / "imgs", n=12)
    first = load(root, False)
    assert "decoding 9 training examples once" in capfd.readouterr().err

    def never(*a, **k):
        raise AssertionError("read again")

    with monkeypatch.context() as m:
        m.setattr(image_folder, "_peek", never)
        m.setattr(normalize, "mean_std_streaming", never)
        again = load(root, False)
    assert again.norm_stats == first.norm_stats
    assert "decoding" not in capfd.readouterr().err
    np.testing.assert_array_equal(again.train.x[:], first.train.x[:])

    changed = min(root.glob("class0/*.png"))
    Image.fromarray(np.full((20, 24, 3), 255, np.uint8)).save(changed)
    peeks = []
    real_peek = image_folder._peek
    monkeypatch.setattr(image_folder, "_peek", lambda *a: peeks.append(a) or real_peek(*a))
    third = load(root, False)
    assert len(peeks) == 12 and third.norm_stats != first.norm_stats
    eager = load(root, True)
    np.testing.assert_allclose(third.norm_stats["mean"], eager.norm_stats["mean"], rtol=1e-12)
