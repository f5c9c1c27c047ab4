"""TensorBoard's event file of a run (`events/`), written in the calling thread.

tensorboardX's SummaryWriter writes from a background thread: a failed write (a full disk)
ends that thread with a traceback, and the next flush waits for it forever. Here each record
is written and flushed by the caller, so a failed write is an archspec error naming the
file, raised where the run can stop cleanly. The file is the one TensorBoard reads
(events.out.tfevents.<time>.<host>, records framed by tensorboardX's RecordWriter)."""
from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from archspec.runs.files import write_error

HINT = "check free disk space; the last checkpoint is intact"


class EventsFile:
    """A new events file in `folder` (made if absent)."""

    def __init__(self, folder: Path):
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import RecordWriter

        folder = Path(folder)
        self.path = folder / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._failed = False
        try:
            folder.mkdir(exist_ok=True)
            self._writer = RecordWriter(str(self.path))
        except OSError as exc:
            raise write_error(self.path, exc, HINT) from None
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboardX.summary import scalar

        self._summary(scalar(tag, float(value)), step)

    def add_text(self, tag: str, text: str) -> None:
        from tensorboardX.summary import text as text_summary

        self._summary(text_summary(tag, text), 0)

    def flush(self) -> None:
        self._guarded(self._writer.flush)

    def close(self) -> None:
        if self._failed:  # what is left in the buffer cannot be written either
            with contextlib.suppress(OSError):
                self._writer.close()
            return
        self._guarded(self._writer.flush)
        self._guarded(self._writer.close)

    def _summary(self, summary, step: int) -> None:
        from tensorboardX.proto import event_pb2

        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event) -> None:
        self._guarded(lambda: self._writer.write(event.SerializeToString()))

    def _guarded(self, action) -> None:
        try:
            action()
        except OSError as exc:
            self._failed = True
            raise write_error(self.path, exc, HINT) from None
