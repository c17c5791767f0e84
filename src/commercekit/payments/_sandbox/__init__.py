"""The sandbox provider: an in-process gateway with test cards and injectable faults."""
