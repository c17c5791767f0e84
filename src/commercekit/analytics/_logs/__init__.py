"""The event log: the ``EventLog`` seam (publish, consume, acknowledge, at least once)
and its engines (JSON lines, a SQL table, Redis Streams, NATS JetStream), opened from a URL.
"""
