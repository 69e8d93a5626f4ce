"""Local fakes of Drip's REST API and Segment's Tracking API, served over real HTTP.

Shared by tests, benchmarks and `drip-bridge demo`:

    with FakeDrip(rate_limit=(60, 6.0)).serve() as drip:
        requests.get(f"{drip.url}/v2/user", auth=("drip-test-token", ""))

Each can also run as its own process: `python -m app.simulators.drip --port 8001`.
"""

from app.simulators.base import Call
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.simulators.server import ServedApp, serve

__all__ = ["Call", "FakeDrip", "FakeSegment", "ServedApp", "serve"]
