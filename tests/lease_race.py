"""Locks racing for one run folder's lease, for the lease tests (local and S3)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gagebench.results.lock import RunLock, RunLockedError


def race(locks: Sequence[RunLock], timeout_s: float) -> tuple[dict[int, str], int | None]:
    """Start ``locks`` acquiring at the same moment (one thread each): each one's outcome
    (``held`` or ``refused``) by index, and the index of the one that holds the lease."""
    outcome: dict[int, str] = {}
    barrier = threading.Barrier(len(locks))

    def take(i: int) -> None:
        barrier.wait()
        try:
            locks[i].acquire()
            outcome[i] = "held"
        except RunLockedError:
            outcome[i] = "refused"

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(locks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    winner = next((i for i, o in outcome.items() if o == "held"), None)
    return outcome, winner
