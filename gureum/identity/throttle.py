"""Slow down repeated failed logins from one address.

Account lockout (Keystone's ``lockout_failure_attempts``) protects one user;
this protects against one address guessing across many users. After
``threshold`` failures inside ``window`` seconds, every further answer to that
address waits, doubling from 0.25 s up to ``max_delay``. The wait is awaited
on the event loop, so it costs no worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_ADDRESSES = 10_000


class AddressThrottle:
    def __init__(self, threshold: int, window: float, max_delay: float) -> None:
        self.threshold = threshold
        self.window = window
        self.max_delay = max_delay
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def delay(self, address: str) -> float:
        """Seconds to wait before answering this address."""
        if self.threshold <= 0:
            return 0.0
        with self._lock:
            failures = self._recent(address, time.monotonic())
            excess = (len(failures) if failures else 0) - self.threshold
        if excess < 0:
            return 0.0
        return float(min(self.max_delay, 0.25 * (2 ** min(excess, 16))))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= MAX_ADDRESSES and address not in self._failures:
                for key in list(self._failures):
                    self._recent(key, now)
                if len(self._failures) >= MAX_ADDRESSES:
                    self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(address, deque(maxlen=1000)).append(now)
