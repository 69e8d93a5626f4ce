"""`python -m app` is `drip-bridge`."""

from app.cli import main

main()
