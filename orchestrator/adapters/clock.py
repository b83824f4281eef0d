"""``ports.Clock`` on the machine's own clock: monotonic seconds and a real sleep."""

from __future__ import annotations

import time


class SystemClock:
    """What verification and a monitor's steps time their windows and the reboot's patience with."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
