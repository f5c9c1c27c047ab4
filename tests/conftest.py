import os
import shutil
import sys
import tempfile
from pathlib import Path

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
    config._archspec_cache = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_archspec_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
