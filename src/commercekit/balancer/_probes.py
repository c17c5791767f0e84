"""The shipped health probes: TCP connect, HTTP status, and any callable."""

from __future__ import annotations

import http.client
import socket
import urllib.parse
from collections.abc import Callable, Container

import attrs

from commercekit.errors import ConfigurationError

__all__ = ["CallableProbe", "HttpProbe", "TcpProbe", "host_port"]


def host_port(node: str) -> tuple[str, int]:
    """Read ``"host:port"`` (or ``"[v6 address]:port"``) from a node name."""
    host, sep, port = node.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"node {node!r} is not 'host:port'; name nodes that way, or give the probe an "
            f"address function that maps a node name to (host, port)"
        )
    return host.strip("[]"), int(port)


@attrs.frozen
class TcpProbe:
    """Passes when a TCP connection to the node opens within the timeout (HAProxy's ``check``).

    *address* maps a node name to ``(host, port)``; by default the name is read
    as ``"host:port"``.
    """

    address: Callable[[str], tuple[str, int]] = host_port

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Open and close one connection to *node*."""
        try:
            with socket.create_connection(self.address(node), timeout=timeout_s):
                return True
        except OSError:
            return False


@attrs.frozen
class HttpProbe:
    """Passes when a request to the node answers with an expected status (``option httpchk``).

    *url* is a template with ``{node}`` in it (``"http://{node}/healthz"``, the
    default) or a function of the node name. *expect* holds the passing
    statuses: 2xx and 3xx by default, as HAProxy. Redirects are not followed.
    """

    url: str | Callable[[str], str] = "http://{node}/healthz"
    expect: Container[int] = range(200, 400)
    method: str = "GET"

    def url_for(self, node: str) -> str:
        """The URL probed for *node*."""
        return self.url.format(node=node) if isinstance(self.url, str) else self.url(node)

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Send one request to *node* and compare its status with *expect*."""
        parts = urllib.parse.urlsplit(self.url_for(node))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"health check URL {self.url_for(node)!r} must be http:// or https:// with a host"
            )
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        try:
            connection.request(
                self.method,
                path,
                headers={"User-Agent": "commercekit-health-check", "Connection": "close"},
            )
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return status in self.expect


@attrs.frozen
class CallableProbe:
    """Any function ``fn(node) -> bool`` as a probe; an exception counts as a failure.

    The function is not told the timeout; the checker counts a late answer as
    a failure, but cannot stop the call, so make it return within the timeout.
    """

    fn: Callable[[str], bool]

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Call the function for *node*."""
        return bool(self.fn(node))
