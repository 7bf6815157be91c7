"""Small helpers around subprocess: every command the bed runs goes through here."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PODMAN = os.environ.get("HEARTH_BED_PODMAN", "podman")


class BedError(RuntimeError):
    """A bed operation failed; the message says which command and why."""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_bytes: bytes | None = None,
    stdout_path: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv, capture output (or send it to a log file) and fail loudly on error."""
    if stdout_path is not None:
        with stdout_path.open("ab") as log:
            proc = subprocess.run(list(argv), input=input_bytes, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
    else:
        proc = subprocess.run(list(argv), input=input_bytes, capture_output=True,
                              timeout=timeout, check=False)
    if check and proc.returncode != 0:
        detail = ""
        if stdout_path is not None:
            detail = "\n".join(stdout_path.read_text(errors="replace").splitlines()[-40:])
        else:
            detail = (proc.stderr or b"").decode(errors="replace")[-4000:]
        raise BedError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{detail}")
    return proc


def podman(*args: str, check: bool = True, timeout: float | None = None) -> str:
    """Run the host's podman and return its stdout as text."""
    return run([PODMAN, *args], check=check, timeout=timeout).stdout.decode().strip()


def cache_dir() -> Path:
    """Where build logs, image archives and locks live (not in the repo)."""
    base = os.environ.get("HEARTH_BED_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hearth-bed")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise bed operations of concurrent runs (e.g. two pytest sessions)."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def timed(label: str, timings: dict[str, float]) -> Iterator[None]:
    """Record how long a step took (the bed prints numbers, it never asserts on them)."""
    start = time.monotonic()
    try:
        yield
    finally:
        timings[label] = round(time.monotonic() - start, 1)
