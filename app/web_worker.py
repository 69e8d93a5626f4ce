"""gunicorn's gevent worker, which stops at once when told to while it boots.

A stock worker that gets SIGTERM (or SIGINT, SIGQUIT) while it boots stops late:

* from fork until gevent has patched the standard library and gunicorn has installed
  the worker's handlers, the signal reaches the master's handler, inherited over
  fork, which queues it in this process's copy of the master and forgets it: the
  worker boots and serves, and the master waits out `graceful_timeout`, then kills
  it. On a busy machine a worker just forked may not run for a while, so the master
  can stop it before it has run a line;
* after that, gunicorn only marks the worker as stopping, so it first imports and
  builds the whole app (seconds on a busy machine), then serves, then stops.

Nothing is served before `booted`, so there is nothing to finish: leave at once.
Once booted, a stop also tells `serve`'s delivery thread to stop claiming at once,
while the connections still open are served.
"""

from __future__ import annotations

import queue
import signal
import sys
from types import FrameType

from gunicorn.workers.ggevent import GeventWorker

STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class BridgeWorker(GeventWorker):
    def listen_for_stops(self, inherited: queue.SimpleQueue[int]) -> None:
        """Right after fork (post_fork): take stop signals from now on, and act on one
        that the master's handler has queued in `inherited` (this process's copy of
        the master's queue) since fork, or that the master itself had yet to handle."""
        for stop in STOPS:  # gunicorn's init_signals replaces these once gevent has patched
            signal.signal(stop, self.handle_exit)
        while True:
            try:
                sig = inherited.get_nowait()
            except queue.Empty:
                return
            if sig in STOPS:
                self.handle_exit(sig, None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # not alive: if the exit below is caught, stop once booted
        if not self.booted:
            sys.exit(0)  # gunicorn still calls worker_exit on the way out
        delivery = getattr(self, "delivery", None)  # `serve` (gunicorn_conf.post_worker_init)
        if delivery:
            # Stop claiming now, not once the open connections are done (worker_exit):
            # the call in flight finishes and the rest of its claim is given back.
            delivery[1].set()

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        if not self.booted:
            self.handle_exit(sig, frame)
        super().handle_quit(sig, frame)
