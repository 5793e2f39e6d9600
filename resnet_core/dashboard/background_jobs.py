"""Slow work the dashboard does for a page without making it wait (no Streamlit here): the
features of a split, a t-SNE map. Each job runs in a daemon thread of the server process, so
it goes on while the page reruns, and after a browser reload the page finds it again by its
key, with how far it has got; its result lands in the run folder, where the page reads it.
A thread and not a process: the work is torch and openTSNE, which leave the GIL while they
compute, and the page needs its progress, which a thread shares for free."""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable

from ..cifar import ProgressCallback

Work = Callable[[ProgressCallback], Any]  # called with progress(done, total)


class Job:
    """One piece of work in a thread: fraction done, then its result or its error (one line)."""

    def __init__(self, name: str, work: Work):
        self.name = name
        self._work = work
        self._done, self._total = 0, 0
        self.result: Any = None
        self.error: str | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)

    def _progress(self, done: int, total: int) -> None:
        self._done, self._total = done, total

    def _run(self) -> None:
        try:
            self.result = self._work(self._progress)
        except Exception as e:  # shown to the user in one line; the page offers to try again
            self.error = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        finally:
            self._finished.set()

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def fraction(self) -> float:
        """0..1 of the work done, as its last progress call said (0 before the first)."""
        return 1.0 if self.finished else (min(1.0, self._done / self._total) if self._total else 0.0)

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)


class Jobs:
    """The jobs of the server, by key: one job a key at a time."""

    def __init__(self):
        self._jobs: dict[Hashable, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: Hashable, name: str, work: Work) -> Job:
        """The job of key while it runs, else a new one started with work: a finished job's
        result may be stale by now (a new checkpoint) or not kept (a read-only run folder),
        and the page starts one only when asked to."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.finished:
                job = self._jobs[key] = Job(name, work).start()
            return job

    def forget(self, key: Hashable) -> None:
        """Drop a finished job (its result is in the run folder by then)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.finished:
                del self._jobs[key]
