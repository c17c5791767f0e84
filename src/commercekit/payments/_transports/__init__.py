"""The HTTP transport seam's implementations: urllib, pooled httpx (sync and async), mock."""
