"""Active health checks: the checker, its probes, and the threads they run on."""
