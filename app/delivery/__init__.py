"""HTTP out: the worker claims stored rows and delivers them to Drip and Segment."""
