"""What a training process says: its log (train.log and stderr, :func:`setup_logging`),
the tracebacks that go to train.log only (:data:`trace_log`), and the progress bar on a
terminal (:class:`TerminalProgress`)."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from . import distributed, runs

# Tracebacks go to train.log only: the terminal and the dashboard get one line.
trace_log = logging.getLogger("resnet_core.trace")


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only when a person is watching a terminal."""

    def __init__(self, epoch: int, epochs: int, batches: int, shown: bool = True):
        """shown: False for the ranks but 0 of a distributed run, which share the terminal."""
        self.enabled = shown and sys.stderr.isatty()
        self.epoch, self.epochs, self.batches = epoch, epochs, batches

    def update(self, batch: int, loss: float, rate: float) -> None:
        if self.enabled:
            filled = int(30 * batch / self.batches)
            sys.stderr.write(f"\repoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{batch}/{self.batches} loss {loss:.3f} {rate:,.0f} img/s ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


class LogFileHandler(logging.StreamHandler):
    """train.log's handler. A write that fails (a full disk) silences it for the rest of the
    process: logging's default prints a traceback on stderr for every later line, while the
    run's failure is one line there."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.setLevel(logging.CRITICAL + 1)
        with contextlib.suppress(OSError):
            self.stream.close()  # drops what a full disk left buffered: no second error at exit


def setup_logging(run_dir: Path | None, world: distributed.World) -> None:
    """Log to train.log in run_dir and to stderr; the ranks other than 0 of a distributed
    run (run_dir None) only their warnings and errors, to stderr, each line naming its rank."""
    root = logging.getLogger("resnet_core")
    root.setLevel(logging.INFO if world.is_main else logging.WARNING)  # rank 0 says what all do
    root.handlers.clear()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(f"[rank {world.rank}] %(message)s" if world.distributed else "%(message)s"))
    root.addHandler(console)
    trace_log.propagate = False
    trace_log.handlers.clear()
    if run_dir is None:
        trace_log.addHandler(console)
        return
    file_handler = LogFileHandler(runs.open_for_append(run_dir / runs.LOG_FILE))
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(file_handler)
    trace_log.addHandler(file_handler)
