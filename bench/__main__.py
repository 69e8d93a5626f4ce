"""`python -m bench [name ...] [-- options]`: run benchmarks (all of them without a name).

`python -m bench ingest --seconds 5` passes the options after the name to that benchmark.
To add one, give it a module with `main(argv)` and a line in BENCHMARKS.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import (
    backlog,
    dashboard,
    ingest,
    intake,
    latency,
    retention,
    shapes,
    slowclients,
    soak,
    throughput,
)

BENCHMARKS: dict[str, Callable[[Sequence[str]], None]] = {
    "ingest": ingest.main,
    "intake": intake.main,
    "backlog": backlog.main,
    "throughput": throughput.main,
    "shapes": shapes.main,
    "latency": latency.main,
    "dashboard": dashboard.main,
    "slowclients": slowclients.main,
    "soak": soak.main,
    "retention": retention.main,
}


def main(argv: Sequence[str]) -> None:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__ + "\nbenchmarks: " + ", ".join(BENCHMARKS))
        return
    if not argv:
        for run in BENCHMARKS.values():
            run([])
        return
    name, options = argv[0], argv[1:]
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](options)


if __name__ == "__main__":
    main(sys.argv[1:])
