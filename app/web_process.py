"""The web process: `python -m app.web_process [gunicorn options] APP` (app/gunicorn_conf.py).

gunicorn converts WEB_CONCURRENCY with int() while it is imported, before it reads any
configuration file, so a value such as "two" (or blank) would stop it with a traceback
and exit status 1, and "-1" with its own message. This checks it first: one line
naming the variable and exit status 2, as for every other setting.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: the container's own, in a container


def cpu_quota(cpu_max: Path = CPU_MAX) -> int | None:
    """The CPUs a cgroup v2 quota allows ("150000 100000": 2, rounded up), or None when
    there is none ("max 100000") or no such file (cgroup v1, not Linux)."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def usable_cpus(cpu_max: Path = CPU_MAX) -> int:
    """The CPUs this process may use: those it may run on (its affinity), no more than its
    container's quota. os.cpu_count() counts the host's cores, which a container with
    `--cpus 2` on a 64-core host may not use."""
    if sys.version_info >= (3, 13):
        allowed = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):  # not on macOS
        allowed = len(os.sched_getaffinity(0))
    else:
        allowed = os.cpu_count() or 1
    quota = cpu_quota(cpu_max)
    return min(allowed, quota) if quota else allowed


def check_web_concurrency() -> None:
    """Stop with one line and status 2 unless WEB_CONCURRENCY is unset or at least 1."""
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    if value and not (value.isdigit() and int(value) >= 1):
        print(f'drip-bridge: WEB_CONCURRENCY must be a whole number of at least 1, got "{value}"',
              file=sys.stderr)  # fmt: skip
        sys.exit(2)


def main(argv: Sequence[str]) -> None:
    check_web_concurrency()
    if not os.environ.get("WEB_CONCURRENCY", "").strip():
        os.environ.pop("WEB_CONCURRENCY", None)  # blank is unset, as for every setting
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", "python:app.gunicorn_conf", *argv]
    run(prog="gunicorn")


if __name__ == "__main__":
    main(sys.argv[1:])
