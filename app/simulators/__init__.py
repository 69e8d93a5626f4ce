"""Local fakes of Drip's REST API and Segment's Tracking API, served over real HTTP.

Shared by tests, benchmarks and `drip-bridge demo`:

    from app.simulators.drip import FakeDrip

    with FakeDrip(rate_limit=(60, 6.0)).serve() as drip:
        requests.get(f"{drip.url}/v2/user", auth=("drip-test-token", ""))

Each can also run as its own process: `python -m app.simulators.drip --port 8001`.
Nothing is re-exported here, so that `python -m` does not import the module twice.
"""
