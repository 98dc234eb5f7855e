"""Heartbeats, failure detection and the one progress bar of a sharded job.

Each rank runs a :class:`Monitor` thread that talks to the rendezvous store every ``poll``
seconds; the compute (main) thread never waits on another rank. Keys, in the job's namespace:

* ``beat/<r>``: rank r's activity count. The main thread counts every score evaluation
  (:meth:`Monitor.beat`, called from inside the solver) and every finished shard; a rank that
  has finished all its shards counts as active while it waits. Rank 0 watches every rank, the
  other ranks watch rank 0: a count that does not move for ``timeout`` seconds means a rank that
  is frozen or dead, and the watcher aborts the job naming it;
* ``abort``: the first failure message (a rank's own exception, or a stall seen by a watcher);
  every rank raises :class:`~scoresde.distributed.world.RankFailedError` with it at its next
  score evaluation, between shards, or while waiting;
* ``done``: items finished across ranks; rank 0 alone draws the progress bar from it;
* ``finished``: ranks that have finished all their shards (the gather waits for all).

Nothing here is a collective, so ranks whose adaptive solvers take different numbers of steps
never wait on each other (unlike DDP-style all-reduces inside a solver loop).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .._utils import progress_bar
from .world import RankFailedError

__all__ = ["Monitor"]


class Monitor:
    """One rank's heartbeat thread for one job (no thread for a single process).

    Args:
        store: The job's key namespace (``World.job_store()``), or None for one process.
        rank: This rank.
        size: World size.
        timeout: Seconds without progress before a rank counts as failed.
        poll: Seconds between heartbeats.
        total: Items in the job (the progress bar's total).
        progress: Draw a progress bar (rank 0 only).
        desc: The bar's label.
    """

    def __init__(
        self,
        store: Any,
        rank: int,
        size: int,
        timeout: float,
        poll: float,
        total: int,
        progress: bool,
        desc: str,
    ) -> None:
        self.store, self.rank, self.size = store, rank, size
        self.timeout, self.poll = timeout, poll
        self.count = 0  # main-thread activity
        self.done = 0  # items finished on this rank (computed or loaded)
        self.finished = False
        self.all_finished = store is None
        self.completed = False
        self.error: RankFailedError | None = None
        self.bar = progress_bar(total=total, desc=desc, disable=not progress or rank != 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = {"beat": 0, "done": 0}
        self._seen: dict[int, tuple[int, float]] = {}

    # -- called by the compute thread --------------------------------------------------------
    def beat(self) -> None:
        """Record activity (one score evaluation); raise if the job has been aborted."""
        self.count += 1
        if self.error is not None:
            raise self.error

    def advance(self, items: int) -> None:
        """Record ``items`` finished items on this rank."""
        self.done += items
        self.beat()
        if self.store is None:
            self.bar.update(items)

    def fail(self, message: str, rank: int | None = None) -> None:
        """Publish the failure of ``rank`` (default: this rank) so that every rank stops.

        The first message published wins; every rank raises it.
        """
        if self.store is not None:
            who = self.rank if rank is None else rank
            try:
                self.store.compare_set("abort", "", f"{who}|{message}")
            except Exception:  # noqa: BLE001 - the store may be gone already; we raise anyway
                return
            # Rank 0 usually hosts the store: it stays until the live ranks have read the
            # message, or they would only see the store vanish (and not which rank failed).
            self._linger(failed=who)

    def wait_all(self) -> None:
        """Mark this rank finished and wait until every rank is (or raise on a failure)."""
        self.finished = True
        while not self.all_finished:
            if self.error is not None:
                raise self.error
            time.sleep(min(self.poll, 0.05))
        if self.error is not None:
            raise self.error
        self.completed = True

    # -- the thread --------------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        if self.store is not None:
            self._tick()
            self._thread = threading.Thread(target=self._run, name="scoresde-monitor", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.completed:  # every rank's items are counted
            self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self._tick()
            except Exception as err:  # noqa: BLE001 - any store failure ends the job
                if self._stop.is_set():
                    return
                self.error = RankFailedError(
                    0,
                    f"rank {self.rank} lost the job's store (hosted by rank 0 or the torchrun "
                    f"agent): {type(err).__name__}: {err}",
                )
                return
            if self.error is not None:
                return

    def _linger(self, failed: int) -> None:
        """On rank 0, wait (at most min(timeout, 5 s)) until every live rank saw the abort.

        Live ranks are all but ``failed`` and rank 0 itself; each acknowledges under its own key.
        """
        if self.rank != 0 or self.store is None:
            return
        keys = [f"abort_seen/{r}" for r in range(1, self.size) if r != failed]
        deadline = time.monotonic() + min(self.timeout, 5.0)
        while keys and time.monotonic() < deadline:
            try:
                if self.store.check(keys):
                    return
            except Exception:  # noqa: BLE001 - the store is gone: nobody is left to tell
                return
            time.sleep(min(self.poll, 0.05))

    def _publish(self, key: str, value: int, store_key: str) -> None:
        if value != self._published[key] or key == "beat":
            self.store.add(store_key, value - self._published[key])
            self._published[key] = value

    def _tick(self) -> None:
        now = time.monotonic()
        if self.finished:
            self.count += 1  # waiting for the others is not a stall
        self._publish("beat", self.count, f"beat/{self.rank}")
        self._publish("done", self.done, "done")
        if self.finished and not self._published.get("finished"):
            self.store.add("finished", 1)
            self._published["finished"] = 1
        if self.store.check(["abort"]):
            rank, _, message = self.store.get("abort").decode().partition("|")
            self.store.set(f"abort_seen/{self.rank}", "1")
            self.error = RankFailedError(int(rank), message)
            # another rank published it: rank 0 (the store's usual host) stays for the rest
            self._linger(failed=int(rank))
            return
        for r in range(self.size) if self.rank == 0 else (0,):
            count = int(self.store.add(f"beat/{r}", 0))
            seen = self._seen.get(r)
            if seen is None or seen[0] != count:
                self._seen[r] = (count, now)
            elif now - seen[1] > self.timeout:
                message = (
                    f"rank {r} made no progress for {self.timeout:g} s (frozen, dead, or one "
                    "score evaluation slower than the timeout)"
                )
                self.fail(message, rank=r)
                self.error = RankFailedError(r, message)
                return
        if self.rank == 0:
            done = int(self.store.add("done", 0))
            if done != self.bar.n:
                self.bar.update(done - self.bar.n)
                self.bar.refresh()
        self.all_finished = int(self.store.add("finished", 0)) >= self.size
