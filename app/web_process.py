"""The web process: `python -m app.web_process [gunicorn options] APP` (app/gunicorn_conf.py).

gunicorn converts WEB_CONCURRENCY with int() while it is imported, before it reads any
configuration file, so a value such as "two" (or blank) would stop it with a traceback
and exit status 1, and "-1" with its own message. This checks it first: one line
naming the variable and exit status 2, as for every other setting.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


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
