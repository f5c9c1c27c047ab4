"""The `archspec` command (also `python -m archspec`): set up the process's memory
(archspec/hugepages.py: re-executes once with glibc's huge-page tunable where it helps), then
run the CLI."""
from __future__ import annotations

import os
import signal
import sys

from archspec import hugepages


def main() -> None:
    env = hugepages.command_env(os.environ)
    if env is not None:
        try:
            os.execve(sys.executable, sys.orig_argv, env)
        except OSError:
            pass  # run as it is
    # Past a file-size limit (`ulimit -f`) a write then fails with EFBIG, reported as a full
    # disk, instead of SIGXFSZ killing the process mid-write.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from archspec.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
