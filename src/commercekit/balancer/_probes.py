"""The shipped health probes: TCP connect, HTTP status, and any callable.

Each answers ``True`` or ``False`` and does not raise for a node that is down,
refusing or silent (a misconfigured probe raises
:class:`~commercekit.errors.ConfigurationError`). Their reprs show no credentials.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import socket
import urllib.parse
from collections.abc import Callable, Container

import attrs

from commercekit.errors import ConfigurationError

__all__ = ["CallableProbe", "HttpProbe", "TcpProbe", "host_port"]

_log = logging.getLogger("commercekit.balancer")
_USERINFO = re.compile(r"\s*(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
"""The scheme and user info of a URL (up to the authority's last ``@``, as urlsplit reads it)."""


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


def _masked(url: str) -> str:
    """*url* with its user info (``user:password@``, or a token) replaced by ``***``."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    return f"{match['head']}***@{url[match.end() :]}"


def _url_repr(url: str | Callable[[str], str]) -> str:
    return repr(_masked(url)) if isinstance(url, str) else repr(url)


@attrs.frozen
class HttpProbe:
    """Passes when a request to the node answers with an expected status (``option httpchk``).

    *url* is a template with ``{node}`` in it (``"http://{node}/healthz"``, the
    default) or a function of the node name. *expect* holds the passing
    statuses: 2xx and 3xx by default, as HAProxy. Redirects are not followed.
    User info in the URL (``"http://monitor:secret@{node}/healthz"``) is sent as
    HTTP Basic authentication; the probe's repr and errors mask the password.
    """

    url: str | Callable[[str], str] = attrs.field(default="http://{node}/healthz", repr=_url_repr)
    expect: Container[int] = range(200, 400)
    method: str = "GET"

    def url_for(self, node: str) -> str:
        """The URL probed for *node*."""
        if not isinstance(self.url, str):
            return self.url(node)
        try:
            return self.url.format(node=node)
        except (KeyError, IndexError, ValueError):
            raise ConfigurationError(
                f"health check URL {_masked(self.url)!r} must have no braces but {{node}}; "
                f"write a literal brace as {{{{ or }}}}"
            ) from None

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Send one request to *node* and compare its status with *expect*."""
        url = self.url_for(node)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"health check URL {_masked(url)!r} must be http:// or https:// with a host"
            )
        headers = {"User-Agent": "commercekit-health-check", "Connection": "close"}
        if parts.username is not None:
            credentials = urllib.parse.unquote(parts.username)
            credentials += ":" + urllib.parse.unquote(parts.password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        try:
            connection.request(self.method, path, headers=headers)
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return status in self.expect


@attrs.frozen
class CallableProbe:
    """Any function ``fn(node) -> bool`` as a probe; an exception counts as a failure.

    An exception the function raises (a refused connection, say) makes the
    probe answer ``False``, as the other probes do, and is logged at DEBUG on
    the ``commercekit.balancer`` logger; a
    :class:`~commercekit.errors.ConfigurationError` is raised as it is, as the
    other probes raise it. The function is not told the timeout; the checker
    counts a late answer as a failure, but cannot stop the call, so make it
    return within the timeout.
    """

    fn: Callable[[str], bool]

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Call the function for *node*."""
        try:
            return bool(self.fn(node))
        except ConfigurationError:
            raise  # set up wrongly, not a node failing: as TcpProbe and HttpProbe, raise
        except Exception as exc:  # a probe that raises has failed, as the checker counts it
            _log.debug("health probe function of %r raised %r", node, exc)
            return False
