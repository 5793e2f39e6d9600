"""A graceful stop: SIGTERM or SIGINT asks a run to stop after its current step (a
mid-epoch checkpoint, resnet_core.loop), rather than ending the process."""

from __future__ import annotations

import signal


class StopRequested:
    """Set by SIGTERM/SIGINT; the loop looks at it after every step."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def install(self) -> None:
        def handler(signum, _frame):
            self.signal = signum

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
