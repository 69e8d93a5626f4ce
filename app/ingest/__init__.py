"""HTTP in: Segment messages and Drip webhooks, checked and stored before the answer."""
