import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    """Every archspec process the suite starts shares one compilation cache, made fresh for
    this suite run (never the user's): the many CLI runs of the same experiments then compile
    each program once. A cached program is the program the compiler would produce, so no
    result changes; JAX locks the folder for the xdist workers. tests/commands/test_check.py measures
    the cache in folders of its own."""
    if hasattr(config, "workerinput"):
        return  # a worker inherits the controller's folder
    folder = tempfile.mkdtemp(prefix="archspec-suite-jax-")
    os.environ["ARCHSPEC_CACHE_DIR"] = folder
    # generated data sets (archspec/data/cache.py) are kept in the suite's folder too
    os.environ["ARCHSPEC_DATA_CACHE_DIR"] = os.path.join(folder, "data")
    # `auto` takes oneDNN for every convolution it can, unmeasured: the same backend on every
    # machine, and no time spent timing convolutions (tests/layers/test_onednn.py turns the
    # measuring on where it tests it)
    os.environ.setdefault("ARCHSPEC_CONV_MEASURE", "0")
    config._archspec_cache = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_archspec_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _slow_ids() -> set[str]:
    lines = (Path(__file__).parent / "slow_tests.txt").read_text().splitlines()
    return {line.split("  #")[0].strip() for line in lines
            if line.strip() and not line.startswith("#")}


def pytest_collection_modifyitems(config, items):
    """The tests listed in tests/slow_tests.txt (measured) get the `slow` mark; an entry of
    a collected file that names no test is stale and stops the run."""
    slow = _slow_ids()
    seen = {item.nodeid for item in items}
    files = {nodeid.split("::")[0] for nodeid in seen}
    stale = sorted(i for i in slow if i.split("::")[0] in files and i not in seen
                   and not config.option.keyword and not config.option.deselect)
    if stale and all(a.startswith("tests") or a == "." for a in config.args or ["."]) \
            and not any("::" in a for a in config.args):
        raise pytest.UsageError(f"tests/slow_tests.txt names tests that do not exist: {stale}")
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
