"""Saves to the same aggregates taken one at a time within a process."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from uuid import UUID


class SaveLocks:
    """Striped locks a command holds, from its save until it is done, for what it changed.

    Optimistic concurrency alone keeps every invariant, but under contention it wastes work:
    ten concurrent receipts to one stock item all decide on the same version, one saves, and
    the other nine retry into each other again, until a command runs out of retries. With
    these locks, commands of one process that change the same aggregates save one after the
    other, and a command whose aggregates were saved by another while it decided decides
    again, under the locks, instead of failing its version check. Other processes still race,
    and the version check still catches them. A command takes all its stripes at once, in
    order, and no more until it is done, so two commands cannot wait for each other.
    """

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._releases = [0] * stripes

    def releases(self) -> list[int]:
        """How often each stripe has been released: take before deciding, pass to `holding`."""
        return self._releases.copy()

    @contextmanager
    def holding(self, aggregate_ids: Iterable[UUID], seen: list[int]) -> Iterator[bool]:
        """Hold the stripes of these aggregates; yields whether none was held since `seen`."""
        stripes = sorted({aggregate_id.int % len(self._locks) for aggregate_id in aggregate_ids})
        untouched = True
        with ExitStack() as held:
            for stripe in stripes:
                self._locks[stripe].acquire()
                held.callback(self._release, stripe)
                untouched = untouched and self._releases[stripe] == seen[stripe]
            yield untouched

    def _release(self, stripe: int) -> None:
        self._releases[stripe] += 1
        self._locks[stripe].release()
