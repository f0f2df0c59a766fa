"""Running a notebook so that Ctrl-C stops it at once: papermill in a worker thread, the kernel killed on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path


def interruptible(run):
    """`run()` in a worker thread. In the main thread nbclient answers Ctrl-C by shutting the kernel down under the
    running cell and goes on (a ZMQError traceback, or the notebook finishing as if nothing happened); here Ctrl-C
    raises KeyboardInterrupt at once, and the kernel (in a session of its own, so Ctrl-C never reaches it) is
    stopped and its client silenced."""
    out: dict = {}

    def target() -> None:
        try:
            out["result"] = run()
        except BaseException as e:  # handed to the main thread
            out["error"] = e

    worker = threading.Thread(target=target, name="papermill", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        for name in ("papermill", "nbclient", "traitlets", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        stop_kernels()
        raise
    if "error" in out:
        raise out["error"]
    return out["result"]


def stop_kernels() -> None:
    """SIGKILL this process's Jupyter kernels (children running ipykernel)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if (
                stat.read_text().rsplit(")", 1)[1].split()[1] == me
                and b"ipykernel" in (stat.parent / "cmdline").read_bytes()
            ):
                os.kill(int(stat.parent.name), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
