"""Events moving: the outbox relay (outbox to log, at least once) and the consumer loop
(log to store), with their metrics.
"""
