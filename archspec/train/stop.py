"""Stop signals during training. SIGINT/SIGTERM ask for a clean stop at the next step
boundary (a final checkpoint, the resume command). Until the first step has run there is
nothing to save, and XLA compiling in C++ (minutes for a large program) would hold a
Python handler back all that time: then the signal ends the process at once (exit 130)."""
from __future__ import annotations

import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """`requested` once a stop signal came; a second signal stops at once. `check()` is
    what the loop calls after each dispatch: from the first call on, a step has run and a
    stop waits for the step boundary. Before it, `on_early_stop` (if given) records the
    stop and the process exits 130 from a watcher thread, woken by the C-level signal
    handler through signal.set_wakeup_fd even while the main thread is inside XLA."""

    def __init__(self, on_early_stop=None):
        self.requested, self.stepped = False, False
        self._old, self._early, self._pipe, self._closing = {}, on_early_stop, None, False

    def __enter__(self):
        for sig in SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        if self._old and self._early is not None:
            self._watch()
        return self

    def check(self) -> bool:
        self.stepped = True
        return self.requested

    def _handle(self, signum, frame):
        if self.requested:  # second signal: stop now
            raise KeyboardInterrupt
        self.requested = True

    def _watch(self) -> None:
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._pipe = (r, w, signal.set_wakeup_fd(w, warn_on_full_buffer=False))
        self._thread = threading.Thread(target=self._wait, args=(r,), daemon=True,
                                        name="archspec-stop")
        self._thread.start()

    def _wait(self, r: int) -> None:
        while True:
            data = os.read(r, 64)
            if self._closing or not data:
                return
            if not self.stepped and any(b in (int(s) for s in SIGNALS) for b in data):
                self._early()
                sys.stderr.write("stopped before the first step (while compiling): "
                                 "nothing to save\n")
                sys.stderr.flush()
                os._exit(130)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._pipe is not None:
            r, w, old_fd = self._pipe
            signal.set_wakeup_fd(old_fd)
            self._closing = True
            os.write(w, b"\0")  # wakes the watcher, which sees `_closing` and returns
            self._thread.join(timeout=5)
            os.close(w)
            os.close(r)
