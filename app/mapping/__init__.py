"""Pure mapping between Segment messages and Drip records (no I/O)."""
