"""drip-bridge: Segment <-> Drip, durable in both directions.

The application factory is `app.factory.create_app`; this package imports
nothing, so that gunicorn's settings run before any part of the app loads.
"""

__version__ = "0.1.0"
