"""Launch a function on N local ranks as torchrun would (env vars), in forked processes.

Forking keeps the test fast (no re-import of torch per rank). Each rank's return value
(pickled to bytes: torch's shared-memory tensors would not outlive the rank), or its
exception (type name, message and ``rank`` attribute), comes back through a queue; ranks still
running when the deadline passes are killed, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(
    fn: Callable[..., Any], rank: int, size: int, port: int, q: Any, log: str | None
) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_WORLD_SIZE=str(size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    if log is not None:
        fd = os.open(f"{log}.{rank}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the rank
    import torch

    torch.set_num_threads(1)
    try:
        q.put((rank, "ok", pickle.dumps(fn(rank))))
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        info = {
            "type": type(err).__name__,
            "message": str(err),
            "rank": getattr(err, "rank", None),
            "traceback": traceback.format_exc(),
        }
        q.put((rank, "error", info))


def launch(
    fn: Callable[[int], Any],
    size: int,
    *,
    timeout: float = 60.0,
    wait_for: set[int] | None = None,
    log: str | None = None,
) -> dict[int, tuple[str, Any]]:
    """Run ``fn(rank)`` on ``size`` ranks; return ``{rank: ("ok", value) | ("error", info)}``.

    Args:
        fn: Called in each rank with the environment of a torchrun worker set.
        size: World size.
        timeout: Seconds before the ranks still running are killed.
        wait_for: Ranks whose result is awaited (default: all); the others are killed once
            these reported (e.g. a frozen rank).
        log: Prefix of per-rank stderr files (``log.0``, ``log.1``, ...), else inherited.
    """
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_child, args=(fn, r, size, port, q, log)) for r in range(size)]
    for p in procs:
        p.start()
    wanted = set(range(size)) if wait_for is None else set(wait_for)
    out: dict[int, tuple[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while not wanted <= set(out) and time.monotonic() < deadline:
        try:
            rank, status, value = q.get(timeout=0.1)
        except queue.Empty:
            if all(not p.is_alive() for p in procs) and q.empty():
                break
            continue
        out[rank] = (status, pickle.loads(value) if status == "ok" else value)
    for r, p in enumerate(procs):
        if r in wanted:
            p.join(timeout=max(0.0, min(5.0, deadline - time.monotonic())))
        if p.is_alive():
            p.kill()
            p.join()
    return out
