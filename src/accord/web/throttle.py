"""Failed sign-ins, counted, so that passwords cannot be guessed at the speed of the server.

Two counts over a sliding window (OWASP's advice for login forms): failures for one user name,
whoever sends them (someone guessing one account's password), and failures from one client
address, whatever the name (someone trying one password on many accounts). Once either count
reaches its limit, the login form refuses further tries from that side, without checking the
password, until the oldest failure in the window has aged out; the answer says how long that
is (``Retry-After``). A successful sign-in clears its user's count.

The counts live in the server process (each process of a deployment counts its own), and are
bounded: past ``MAX_KEYS`` names or addresses the least recently failed are forgotten, so a
flood of made-up names cannot grow the process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 10_000
# Names (and addresses) are counted by their first characters only (user ids have at most 64),
# so a made-up name of a megabyte costs no more memory than a real one.
MAX_NAME = 64


class _Failures:
    """Times of recent failures per key (oldest first), for at most MAX_KEYS keys."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._by_key: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        times = self._by_key.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._by_key[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window_s - now

    def add(self, key: str, now: float) -> None:
        times = self._by_key.pop(key, None) or deque()
        times.append(now)
        while len(times) > self.limit:
            times.popleft()  # only the last ``limit`` failures decide when trying is allowed
        self._by_key[key] = times  # most recent last
        while len(self._by_key) > MAX_KEYS:
            self._by_key.popitem(last=False)

    def clear(self, key: str) -> None:
        self._by_key.pop(key, None)


def _name_key(user: str) -> str:
    return user[:MAX_NAME].lower()


class LoginThrottle:
    """Refuses sign-ins for a user name or client address with too many recent failures."""

    def __init__(
        self,
        per_user: int = 5,
        per_client: int = 20,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_user < 1 or per_client < 1 or window_s <= 0:
            raise ValueError("login limits must be at least 1 attempt in a positive window")
        self._users = _Failures(per_user, window_s)
        self._clients = _Failures(per_client, window_s)
        self._clock = clock
        self._lock = threading.Lock()

    def retry_after(self, user: str, client: str) -> float:
        """Seconds before ``user`` may try to sign in from ``client`` (0: go ahead)."""
        with self._lock:
            now = self._clock()
            return max(
                self._users.retry_after(_name_key(user), now),
                self._clients.retry_after(client[:MAX_NAME], now),
            )

    def failed(self, user: str, client: str) -> None:
        """Count a wrong password (or unknown user) for both the name and the address."""
        with self._lock:
            now = self._clock()
            self._users.add(_name_key(user), now)
            self._clients.add(client[:MAX_NAME], now)

    def succeeded(self, user: str) -> None:
        """A right password: the user's failures are forgotten (the address's are not)."""
        with self._lock:
            self._users.clear(_name_key(user))
