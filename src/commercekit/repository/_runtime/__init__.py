"""The I/O runtime, one copy run by both twins: the Database, units of work,
repositories, the replica group's probes and fail-over, metrics, the outbox.
"""
