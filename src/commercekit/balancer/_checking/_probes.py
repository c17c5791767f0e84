"""The shipped health probes: TCP connect, HTTP status, and any callable.

Each answers ``True`` or ``False`` and does not raise for a node that is down,
refusing or silent (a misconfigured probe raises
:class:`~commercekit.errors.ConfigurationError`). Their reprs show no credentials.

``timeout_s`` bounds the whole check, not each socket operation: every connect,
TLS handshake, send and receive gets only the time left before the check's
deadline, so a server that answers one byte at a time fails the check by its
deadline. (Name resolution goes through the system resolver, whose own timeout
applies; name nodes by address to keep it out of the check.)
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import ssl
import time
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
    if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
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
        """Open and close one connection to *node*, all within *timeout_s*."""
        deadline = time.monotonic() + timeout_s
        try:
            with _connect(self.address(node), deadline):
                return True
        except OSError:
            return False


def _left(deadline: float) -> float:
    """The seconds left before *deadline*; a TimeoutError once there are none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the health check's deadline passed")
    return left


def _connect(address: tuple[str, int], deadline: float) -> socket.socket:
    """A TCP connection to *address* opened before *deadline* (over all its addresses)."""
    host, port = address
    error: OSError = TimeoutError("the health check's deadline passed")
    try:
        found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except UnicodeError:  # not a name IDNA can encode (an empty or 64+ character label)
        raise ConfigurationError(
            f"health check host {host[:80]!r} is not a valid host name or address"
        ) from None
    for family, kind, proto, _, target in found:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(target)
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break
            continue
        return sock
    raise error


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: |\r?$)")
_MAX_STATUS_LINE = 8192
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"[\x21-\x7e]+")


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
        try:
            parts = urllib.parse.urlsplit(url)
            hostname = parts.hostname
        except ValueError:  # an unbalanced "[" of an IPv6 address, say
            raise ConfigurationError(
                f"health check URL {_masked(url)!r} is not a valid URL"
            ) from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise ConfigurationError(
                f"health check URL {_masked(url)!r} must be http:// or https:// with a host"
            )
        host = hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConfigurationError(
                f"health check URL {_masked(url)!r} has a port that is not a number in 1-65535"
            ) from None
        authority = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            authority = f"{authority}:{port}"
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        if not _TOKEN.fullmatch(self.method) or not _TARGET.fullmatch(target):
            raise ConfigurationError(
                f"health check {self.method!r} request for {_masked(url)!r} is not valid HTTP: "
                f"the method must be a token and the path printable ASCII without spaces"
            )
        lines = [
            f"{self.method} {target} HTTP/1.1",
            f"Host: {authority}",
            "User-Agent: commercekit-health-check",
            "Connection: close",
        ]
        if parts.username is not None:
            credentials = urllib.parse.unquote(parts.username)
            credentials += ":" + urllib.parse.unquote(parts.password or "")
            lines.append("Authorization: Basic " + base64.b64encode(credentials.encode()).decode())
        try:
            request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"health check URL {_masked(url)!r} must be ASCII (percent-encode the rest)"
            ) from None
        status = _status(parts.scheme == "https", host, port, request, time.monotonic() + timeout_s)
        return status is not None and status in self.expect


def _status(tls: bool, host: str, port: int, request: bytes, deadline: float) -> int | None:
    """Send *request* and read the response's status code, all before *deadline*.

    None when the node refuses, stays silent, answers too slowly or not in HTTP.
    """
    try:
        sock = _connect((host, port), deadline)
    except OSError:
        return None
    try:
        if tls:
            context = ssl.create_default_context()
            sock.settimeout(_left(deadline))  # the handshake as a whole gets what is left
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.settimeout(_left(deadline))
        sock.sendall(request)  # sendall, too, keeps one deadline for the whole call
        head = b""
        while b"\n" not in head and len(head) < _MAX_STATUS_LINE:
            sock.settimeout(_left(deadline))
            chunk = sock.recv(_MAX_STATUS_LINE - len(head))
            if not chunk:
                break
            head += chunk
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    finally:
        sock.close()
    match = _STATUS_LINE.match(head.split(b"\n", 1)[0])
    return int(match[1]) if match else None


@attrs.frozen
class CallableProbe:
    """Any function ``fn(node) -> bool`` as a probe; an exception counts as a failure.

    An exception the function raises (a refused connection, say) makes the
    probe answer ``False``, as the other probes do, and is logged at DEBUG on
    the ``commercekit.balancer`` logger; a
    :class:`~commercekit.errors.ConfigurationError` is raised as it is, as the
    other probes raise it. The function is not told the timeout; the checker
    counts a late answer as a failure, but cannot stop the call: a call that
    overruns keeps its own (daemon) thread until it returns, and its node is
    not probed again meanwhile, so it never holds up other nodes' checks. Make
    it return within the timeout all the same.
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
