"""drip-bridge: Segment <-> Drip, durable in both directions."""

__version__ = "0.1.0"

from app.factory import create_app  # noqa: E402  (after __version__, which parts import)

__all__ = ["__version__", "create_app"]
