"""A thread that runs one job whenever asked, coalescing requests: newest input wins.

The VLA node's subscription callbacks only buffer inputs and call `request`; the model runs
here, off the executor, so frames keep arriving (and old ones fall out of the buffers)
while it thinks. Requests made during a run collapse into one more run, never a queue.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable


class LatestOnlyWorker:
    def __init__(
        self,
        job: Callable[[], None],
        on_error: Callable[[Exception], None],
        name: str = "worker",
        niceness: int = 0,
    ) -> None:
        """`on_error` hears of an exception a run raised; the worker then carries on.

        `niceness` > 0 lowers the thread's CPU priority (Linux schedules threads on their
        own), for work off the control path that should yield to it on a busy machine.
        """
        self._job = job
        self._niceness = niceness
        self._on_error = on_error
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Ask for a run; returns at once."""
        self._wanted.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the run in progress, if any, and end the thread."""
        self._stopping = True
        self._wanted.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        if self._niceness > 0 and sys.platform == "linux":
            self._lower_priority()
        while True:
            self._wanted.wait()
            if self._stopping:
                return
            self._wanted.clear()
            try:
                self._job()
            except Exception as error:  # reported, and the next input gets its run
                self._on_error(error)

    def _lower_priority(self) -> None:
        """This thread's nice value raised by `niceness`; where the system refuses, the
        refusal is reported and the work runs at normal priority."""
        thread = threading.get_native_id()
        try:
            niceness = os.getpriority(os.PRIO_PROCESS, thread) + self._niceness
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except OSError as error:
            self._on_error(error)
