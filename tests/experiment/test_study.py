"""A sweep's Optuna study shared by worker processes, without training: each fake trial
writes the run folder a training would (a val record and a summary). Claims are atomic, the
budget is shared, draws are seeded by trial number, a dead worker's trial is taken over, a
live one's never, a late result is kept, and a study of another sweep is refused. Each runs
on the embedded journal file and on a real PostgreSQL server (tests/postgres.py)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import traceback

import pytest
import yaml

from helpers import ROOT
from postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"
CTX = mp.get_context("fork")   # the children start in a blink: a race is a race


def sweep_file(tmp_path, name="s", **keys):
    data = {"name": name, "experiment": str(EXPERIMENT), "set": {"epochs": 1}, **keys}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fake_run(folder, value: float, status: str = "finished"):
    """What a training leaves for the study: a validation record and a summary."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"step": 1, "epoch": 1, "split": "val", "loss": 1 - value, "accuracy_classes": value},
             {"step": 1, "split": "summary", "status": status}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def score(varying: dict) -> float:
    return round(0.5 + 0.01 * sum(hash(str(v)) % 40 for v in varying.values()) / 40, 6)


def open_handle(file, out, storage):
    from archspec.experiment.storage import place_of
    from archspec.experiment.study import open_study
    from archspec.experiment.sweep import load_sweep

    sw = load_sweep(file, str(out))
    return open_study(sw, place_of(storage, sw.folder), "val.accuracy", "maximize")


def worker(file, out, storage, barrier, queue, die_after=None, die=None):
    """Claim, 'train', tell, until nothing is left; die_after=k: SIGKILL itself while
    holding its k-th trial (k from 1), once the event `die` is set."""
    try:
        from archspec.experiment.study import claim, tell

        if barrier is not None:
            barrier.wait()
        h = open_handle(file, out, storage)
        done = []
        while (c := claim(h)) is not None:
            if die_after is not None and len(done) + 1 == die_after:
                queue.put(("holding", c.number))
                die.wait(120)
                os.kill(os.getpid(), signal.SIGKILL)
            fake_run(h.sweep.folder / c.folder, score(c.varying))
            told = tell(h, c, h.sweep.folder / c.folder)
            h.locks.release(c.number)
            done.append((c.number, c.folder, json.dumps(c.varying, sort_keys=True), told))
        h.close()
        queue.put(("done", done))
    except BaseException:  # noqa: BLE001 - the parent asserts there were none
        queue.put(("error", traceback.format_exc()))


def run_workers(n, file, out, storage, timeout=240):
    queue, barrier = CTX.Queue(), CTX.Barrier(n)
    procs = [CTX.Process(target=worker, args=(file, out, storage, barrier, queue))
             for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r[1] for r in results if r[0] == "error"]
    assert not errors, errors[0]
    return [t for r in results for t in r[1]]


@pytest.fixture(params=["journal", "postgresql"])
def storage(request):
    """None: the default journal file in the sweep folder; else a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture(params=["journal", pytest.param("postgresql", marks=pytest.mark.slow)])
def busy_storage(request):
    """The same, the PostgreSQL runs marked slow (many workers: seconds on a busy machine)."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


def trials_of(file, out, storage):
    h = open_handle(file, out, storage)
    try:
        return h.study.get_trials(deepcopy=False)
    finally:
        h.close()


# --- claims ----------------------------------------------------------------------------------
def test_eight_workers_on_a_24_point_grid_train_each_point_once(tmp_path, busy_storage):
    from archspec.experiment.sweep import load_sweep

    storage = busy_storage
    file = sweep_file(tmp_path, grid={"optimizer.lr": [0.01, 0.02, 0.03, 0.04],
                                      "batch_size": [8, 16, 24, 32, 40, 48]})
    claimed = run_workers(8, file, tmp_path / "out", storage)
    points = load_sweep(file, str(tmp_path / "out")).points()
    assert sorted(n for n, *_ in claimed) == list(range(24))            # 24 runs, 0 duplicates
    assert sorted(f for _, f, *_ in claimed) == sorted(p.id for p in points)
    for number, folder, varying, told in claimed:                        # trial n is point n
        assert folder == points[number].id and json.loads(varying) == points[number].varying
        assert told == "complete"
    trials = trials_of(file, tmp_path / "out", storage)
    assert len(trials) == 24 and {t.state.name for t in trials} == {"COMPLETE"}
    assert all(t.value == score(points[t.number].varying) for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["journal", "postgresql"])
def test_sixteen_workers_started_at_once_give_no_error(tmp_path, request, where):
    """The first create_study races, the table creation in a new database, 16 connections:
    every worker joins the one study and the 16 trials are trained once each."""
    storage = request.getfixturevalue("postgres_url") if where == "postgresql" else None
    file = sweep_file(tmp_path, grid={"batch_size": list(range(8, 24))})
    claimed = run_workers(16, file, tmp_path / "out", storage)
    assert sorted(n for n, *_ in claimed) == list(range(16))
    assert len(trials_of(file, tmp_path / "out", storage)) == 16


def test_budget_is_shared_and_draws_are_seeded_by_trial_number(tmp_path, busy_storage):
    """trials: 10 is ten trials in all for four workers started at the same moment; trial n
    draws the same values whichever worker draws it (a second study, one worker), and no two
    trials draw the same."""
    storage = busy_storage
    space = {"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "batch_size": {"int": [8, 256]}}
    file = sweep_file(tmp_path, search="random", trials=10, seed=3, random=space)
    claimed = run_workers(4, file, tmp_path / "out", storage)
    assert sorted(n for n, *_ in claimed) == list(range(10))
    again = run_workers(1, sweep_file(tmp_path, name="again", search="random", trials=10,
                                      seed=3, random=space), tmp_path / "out", storage)
    by_number = {n: v for n, _, v, _ in claimed}
    assert {n: v for n, _, v, _ in again} == by_number
    assert len(set(by_number.values())) == 10
    other = run_workers(1, sweep_file(tmp_path, name="other", search="random", trials=10,
                                      seed=4, random=space), tmp_path / "out", storage)
    assert {v for _, _, v, _ in other}.isdisjoint(by_number.values())


def test_a_dead_workers_trial_is_taken_over_and_a_live_ones_never(tmp_path, storage):
    from archspec.experiment.study import claim

    file = sweep_file(tmp_path, search="random", trials=3,
                      random={"optimizer.lr": {"loguniform": [1e-4, 1e-1]}})
    queue, die = CTX.Queue(), CTX.Event()
    holder = CTX.Process(target=worker, args=(file, tmp_path / "out", storage, None, queue, 1,
                                              die))
    holder.start()
    assert queue.get(timeout=120) == ("holding", 0)
    h = open_handle(file, tmp_path / "out", storage)
    try:
        live = claim(h)   # the holder is alive: trial 0 is its, this worker draws trial 1
        assert live.number == 1 and not live.taken_over
        h.locks.release(live.number)   # (trial 1 stays running: its lock is free now)
        die.set()
        holder.join(timeout=60)
        assert holder.exitcode == -signal.SIGKILL
        deadline, taken = time.time() + 20, None
        while taken is None or taken.number != 0:   # the server notices the closed connection
            assert time.time() < deadline, "trial 0 was never freed"
            taken = claim(h)
            if taken.number != 0:
                h.locks.release(taken.number)
                time.sleep(0.5)
        assert taken.taken_over
        assert taken.varying == {"optimizer.lr": trials_of(file, tmp_path / "out", storage)[0]
                                 .params["optimizer.lr"]}
    finally:
        h.close()


def test_a_late_result_is_kept_never_an_error(tmp_path, storage):
    """A worker presumed dead finishes a trial another worker finished first: the study keeps
    the first result and records the late one in its attributes."""
    from archspec.experiment.study import claim, tell

    file = sweep_file(tmp_path, search="random", trials=1,
                      random={"optimizer.lr": {"loguniform": [1e-4, 1e-1]}})
    first, second = open_handle(file, tmp_path / "out", storage), \
        open_handle(file, tmp_path / "out", storage)
    try:
        c = claim(first)
        folder = first.sweep.folder / c.folder
        fake_run(folder, 0.75)
        assert tell(second, c, folder) == "complete"    # the worker that took it over
        fake_run(folder, 0.5)
        assert tell(first, c, folder) == "late"         # the presumed-dead one, later
        study = trials_of(file, tmp_path / "out", storage)
        assert [t.value for t in study] == [0.75]
        late = {k: v for k, v in second.study.user_attrs.items() if k.startswith("late_result")}
        ((key, value),) = late.items()
        assert key.startswith("late_result_trial_0_") and value["value"] == 0.5
        assert value["recorded_state"] == "COMPLETE"
    finally:
        first.close()
        second.close()


def test_a_study_of_another_sweep_is_refused(tmp_path, storage):
    from archspec.experiment.study import StudyError

    file = sweep_file(tmp_path, grid={"optimizer.lr": [0.01, 0.02]})
    open_handle(file, tmp_path / "out", storage).close()
    changed = sweep_file(tmp_path, grid={"optimizer.lr": [0.01, 0.03]})
    with pytest.raises(StudyError) as info:
        open_handle(changed, tmp_path / "out", storage)
    assert "belongs to another sweep" in info.value.message


# --- storage ---------------------------------------------------------------------------------
def test_sqlite_on_a_network_file_system_is_refused(tmp_path, monkeypatch):
    from archspec.errors import UsageError
    from archspec.experiment import storage as st

    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n")
    assert st.filesystem_type(tmp_path / "study.db", str(mounts)) == "nfs4"
    assert st.filesystem_type(ROOT, str(mounts)) == "ext4"
    monkeypatch.setattr(st, "filesystem_type", lambda path: "nfs4")
    with pytest.raises(UsageError) as info:
        st.place_of(f"sqlite:///{tmp_path}/study.db", tmp_path)
    assert "SQLite on a network file system (nfs4" in info.value.message
    assert "journal" in info.value.hint and "postgresql" in info.value.hint
    monkeypatch.undo()
    assert st.place_of(f"sqlite:///{tmp_path}/study.db", tmp_path).kind == "sqlite"
    with pytest.raises(UsageError, match="not supported yet"):
        st.place_of("mysql://u@h/db", tmp_path)


def test_guarded_pruner_waits_for_min_trials_and_min_epochs_and_says_why():
    import optuna

    from archspec.experiment.search import Search
    from archspec.experiment.study import make_pruner

    def study_with(min_trials, min_epochs=1):
        pruner = make_pruner(Search("random", 8, pruner="median", min_trials=min_trials,
                                    min_epochs=min_epochs), "val.accuracy")
        study = optuna.create_study(direction="maximize", pruner=pruner)
        for v in (0.9, 0.92, 0.94):
            t = study.ask()
            t.report(v, 1)
            study.tell(t, v)
        bad = study.ask()
        bad.report(0.1, 1)
        return pruner, bad

    pruner, bad = study_with(4)
    assert not bad.should_prune() and pruner.reason is None      # 3 others at epoch 1 < 4
    pruner, bad = study_with(3, min_epochs=2)
    assert not bad.should_prune() and pruner.reason is None      # epoch 1 < min_epochs 2
    pruner, bad = study_with(3)
    assert bad.should_prune()
    assert pruner.reason == ("median at epoch 1: val.accuracy 0.1 against 3 other trials "
                             "there (median 0.92, best 0.94)")


def _asha_study(**search):
    """A maximising in-memory study with archspec's ASHA pruner (min_trials 2), and it."""
    import optuna

    from archspec.experiment.search import Search
    from archspec.experiment.study import make_pruner

    pruner = make_pruner(Search("random", 8, pruner="asha", min_trials=2, **search),
                         "val.accuracy")
    return optuna.create_study(direction="maximize", pruner=pruner), pruner


def test_asha_with_min_epochs_has_its_first_rung_there():
    study, pruner = _asha_study(min_epochs=3)
    for v in (0.9, 0.92, 0.94):
        t = study.ask()
        for epoch in (1, 2, 3):
            t.report(v, epoch)
            assert not t.should_prune()
        study.tell(t, v)
    bad = study.ask()
    for epoch in (1, 2):    # far below the others, but before the first rung
        bad.report(0.1, epoch)
        assert not bad.should_prune()
    bad.report(0.1, 3)
    assert bad.should_prune() and pruner.reason.startswith("asha at epoch 3:")


@pytest.mark.parametrize("factor, pruned", [(3, True), (2, False)])
def test_asha_reduction_factor_sets_the_share_kept_at_a_rung(factor, pruned):
    """Six trials at epoch 1, the newest third best: keeping the best third (two) prunes it,
    keeping the best half (three) does not."""
    study, _ = _asha_study(reduction_factor=factor)
    for v in (0.95, 0.92, 0.4, 0.3, 0.2):
        t = study.ask()
        t.report(v, 1)
        t.should_prune()    # ASHA records a trial's rung when it is asked
        study.tell(t, v)
    third = study.ask()
    third.report(0.9, 1)
    assert third.should_prune() is pruned


@pytest.mark.parametrize("epochs, pruned", [(30, False), (81, True)])
def test_asha_does_not_prune_at_a_rung_whose_next_is_past_the_last_epoch(epochs, pruned):
    """Rungs at 1, 3, 9, 27: a trial ahead at 1, 3 and 9 and behind at 27 goes on to its end
    in a 30-epoch run (the next rung, 81, is past it), and is pruned in an 81-epoch run."""
    from archspec.experiment.samplers import EPOCHS

    study, pruner = _asha_study()
    for v in (0.5, 0.6, 0.7):
        t = study.ask()
        for epoch in range(1, 28):
            t.report(v, epoch)
            t.should_prune()
        study.tell(t, v)
    late = study.ask()
    late.set_user_attr(EPOCHS, epochs)
    for epoch in range(1, 27):
        late.report(0.9, epoch)
        assert not late.should_prune()
    late.report(0.1, 27)
    assert late.should_prune() is pruned
    assert (pruner.reason or "").startswith("asha at epoch 27") is pruned
