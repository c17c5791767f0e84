"""The pure core of RFC 9111 for a shared cache: what to store, how to reuse it, how to update it.

No I/O and no clock: every function takes the times it needs. ``EdgeCache``
calls these and does the fetching and storing around them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from urllib.parse import urljoin, urlsplit

import attrs

from commercekit.cdn._message._dates import parse_http_date
from commercekit.cdn._message._headers import HOP_BY_HOP, Headers
from commercekit.cdn._message._messages import Request, Response
from commercekit.cdn._message._stored import StoredResponse
from commercekit.errors import InvalidInputError

from ._cache_control import EMPTY, CacheControl, parse_cache_control, parse_targeted
from ._freshness import corrected_initial_age, freshness_lifetime, parse_age
from ._keys import normalize_url
from ._vary import VARY_STAR, variant_of, vary_names

__all__ = [
    "CACHEABLE_METHODS",
    "SAFE_METHODS",
    "Action",
    "CachePolicy",
    "conditional_headers",
    "decide",
    "invalidation_urls",
    "merge_not_modified",
    "response_directives",
    "select_variant",
    "shareable",
    "store_decision",
    "surrogate_keys",
    "usable_on_error",
]

_CONTROLS = re.compile(r"[\x00-\x20\x7f]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CACHEABLE_METHODS = frozenset({"GET", "HEAD"})

# Fields about the stored content a 304 must not change (RFC 9111 3.2, 4.3.4).
_NOT_UPDATED_BY_304 = (
    frozenset({"content-length", "content-encoding", "content-type", "content-range", "age"})
    | HOP_BY_HOP
)


@attrs.frozen(slots=True)
class CachePolicy:
    """The edge's settings that the RFC leaves to the cache; all durations in seconds.

    ``targeted_fields`` are read before ``Cache-Control`` (RFC 9213), first
    one present wins. ``default_*`` stale windows apply when a response names
    none (Varnish's grace); they are 0 by default, as the RFC asks.
    ``keep_s`` keeps a stale response with validators for conditional
    revalidation. ``honor_request_no_cache`` makes a client's ``no-cache`` or
    ``max-age=0`` force a (coalesced) revalidation; CDNs ignore it by default
    to protect the origin.
    """

    targeted_fields: tuple[str, ...] = ("cdn-cache-control",)
    heuristic_fraction: float = 0.1
    heuristic_max_s: float = 86_400.0
    default_stale_while_revalidate_s: float = 0.0
    default_stale_if_error_s: float = 0.0
    keep_s: float = 3_600.0
    honor_request_no_cache: bool = attrs.field(default=False, kw_only=True)
    store_set_cookie: bool = attrs.field(default=False, kw_only=True)


DEFAULT_POLICY = CachePolicy()


def response_directives(headers: Headers, policy: CachePolicy = DEFAULT_POLICY) -> CacheControl:
    """Return the directives this cache obeys: a targeted field if valid, else ``Cache-Control``."""
    for name in policy.targeted_fields:
        value = headers.joined(name)
        if value is not None:
            parsed = parse_targeted(value)
            if parsed is not None:
                return parsed  # RFC 9213 2.1: an invalid targeted field is ignored
    return parse_cache_control(headers.joined("cache-control"))


def surrogate_keys(headers: Headers) -> frozenset[str]:
    """Return a response's purge tags: ``Surrogate-Key`` (spaces), ``Cache-Tag`` (commas)."""
    tags: set[str] = set()
    for value in headers.get_all("surrogate-key"):
        tags.update(value.split())
    for value in headers.get_all("cache-tag"):
        tags.update(t.strip() for t in value.split(","))
    tags.discard("")
    return frozenset(t for t in tags if len(t) <= 1024)


def shareable(response: Response) -> bool:
    """Say whether one origin response may be handed to every coalesced waiter.

    A ``private`` response, or one that sets a cookie, belongs to the client
    that asked; the other waiters go to the origin themselves (Fastly does
    the same). Errors and ``no-store`` responses are shared: they say
    nothing about one client.
    """
    cc = parse_cache_control(response.headers.joined("cache-control"))
    return not cc.private and "set-cookie" not in response.headers


def store_decision(
    key: str,
    request: Request,
    response: Response,
    *,
    request_time: float,
    response_time: float,
    policy: CachePolicy = DEFAULT_POLICY,
) -> StoredResponse | None:
    """Return the response as it would be stored, or None when a shared cache must not store it.

    RFC 9111 3 and 3.5: only final responses to GET, no ``no-store`` on
    either side, no ``private``, ``Authorization`` only with ``public``,
    ``s-maxage`` or ``must-revalidate``, no ``Vary: *``, and some freshness
    information (explicit, heuristic, or ``no-cache`` with a validator).
    """
    if request.method != "GET" or response.status < 200 or response.status in (206, 304):
        return None
    req_cc = parse_cache_control(request.headers.joined("cache-control"))
    cc = response_directives(response.headers, policy)
    if cc.malformed and not cc.no_store and cc.max_age is None and cc.s_maxage is None:
        return None  # nothing we can trust: the safe default is not to store
    if req_cc.no_store or cc.no_store or cc.private:
        return None
    if "authorization" in request.headers and not (
        cc.public or cc.s_maxage is not None or cc.must_revalidate
    ):
        return None
    if "set-cookie" in response.headers and not policy.store_set_cookie:
        return None
    vary = vary_names(response.headers)
    if vary == VARY_STAR:
        return None
    headers = response.headers
    date_value = parse_http_date(headers.joined("date"))  # several lines: not a date
    lifetime = freshness_lifetime(
        cc,
        status=response.status,
        date_value=date_value,
        expires=headers.joined("expires"),  # several lines: invalid, so expired (5.3)
        last_modified=headers.joined("last-modified"),
        response_time=response_time,
        heuristic_fraction=policy.heuristic_fraction,
        heuristic_max_s=policy.heuristic_max_s,
    )
    has_validator = "etag" in headers or "last-modified" in headers
    if lifetime is None:
        if not (cc.no_cache and has_validator) and not cc.public:
            return None
        lifetime = 0.0
    initial_age = corrected_initial_age(
        age_value=parse_age(headers.get("age")),
        date_value=date_value,
        request_time=request_time,
        response_time=response_time,
    )
    fresh_until = response_time + lifetime - initial_age
    never_stale = cc.revalidate_when_stale or cc.no_cache
    swr = (
        0.0
        if never_stale
        else _window(cc.stale_while_revalidate, policy.default_stale_while_revalidate_s)
    )
    sie = 0.0 if never_stale else _window(cc.stale_if_error, policy.default_stale_if_error_s)
    keep = policy.keep_s if has_validator else 0.0
    stored_headers = headers.without(*HOP_BY_HOP, "age")
    return StoredResponse(
        key=key,
        status=response.status,
        headers=stored_headers,
        body=response.body,
        request_time=request_time,
        response_time=response_time,
        initial_age=initial_age,
        fresh_until=fresh_until,
        stale_while_revalidate_until=fresh_until + swr,
        stale_if_error_until=fresh_until + sie,
        keep_until=fresh_until + max(swr, sie, keep),
        vary=vary,
        variant=variant_of(vary, request.headers),
        tags=surrogate_keys(headers),
        no_cache=cc.no_cache,
        revalidate_when_stale=never_stale,
    )


def _window(seconds: int | None, default: float) -> float:
    return float(seconds) if seconds is not None else default


def select_variant(stored: Sequence[StoredResponse], request: Request) -> StoredResponse | None:
    """Return the most recent stored response whose ``Vary`` values match *request* (4.1)."""
    best: StoredResponse | None = None
    seen: dict[tuple[str, ...], tuple[str | None, ...]] = {}
    for entry in stored:
        if entry.vary:
            wanted = seen.get(entry.vary)
            if wanted is None:
                wanted = seen[entry.vary] = variant_of(entry.vary, request.headers)
            if wanted != entry.variant:
                continue
        if best is None or entry.response_time > best.response_time:
            best = entry
    return best


class Action(enum.Enum):
    """What to do with a stored response for one request."""

    SERVE = "serve"
    """Fresh: serve it."""
    SERVE_STALE_AND_REFRESH = "serve-stale-and-refresh"
    """Stale within ``stale-while-revalidate``: serve it, refresh in the background."""
    REVALIDATE = "revalidate"
    """Ask the origin (conditionally); ``stale-if-error`` may still save the day."""


def decide(
    entry: StoredResponse,
    now: float,
    request_cc: CacheControl = EMPTY,
    policy: CachePolicy = DEFAULT_POLICY,
) -> Action:
    """Decide how to use *entry* at *now* (RFC 9111 4.2, 4.2.4; RFC 5861 3)."""
    if entry.no_cache:
        return Action.REVALIDATE
    if policy.honor_request_no_cache:
        if request_cc.no_cache:
            return Action.REVALIDATE
        if request_cc.max_age is not None and entry.age(now) > request_cc.max_age:
            return Action.REVALIDATE
        if request_cc.min_fresh is not None and entry.fresh_until - now < request_cc.min_fresh:
            return Action.REVALIDATE
    if now < entry.fresh_until:
        return Action.SERVE
    if now < entry.stale_while_revalidate_until:
        return Action.SERVE_STALE_AND_REFRESH
    return Action.REVALIDATE


def usable_on_error(entry: StoredResponse, now: float) -> bool:
    """Say whether *entry* may be served because the origin failed (RFC 5861 4)."""
    return not entry.revalidate_when_stale and now < entry.stale_if_error_until


def conditional_headers(entry: StoredResponse) -> dict[str, str]:
    """Return the validators to send when revalidating *entry* (RFC 9111 4.3.1)."""
    out: dict[str, str] = {}
    if entry.etag is not None:
        out["if-none-match"] = entry.etag
    if entry.last_modified is not None:
        out["if-modified-since"] = entry.last_modified
    return out


def merge_not_modified(
    entry: StoredResponse,
    request: Request,
    not_modified: Response,
    *,
    request_time: float,
    response_time: float,
    policy: CachePolicy = DEFAULT_POLICY,
) -> StoredResponse | None:
    """Return *entry* freshened by a 304 (RFC 9111 4.3.4), or None if it must be dropped.

    Every field of the 304 replaces the stored one, except those describing
    the stored content. If the 304's strong ``ETag`` names another
    representation, the stored one is not the one validated: drop it.
    """
    new_etag = not_modified.headers.get("etag")
    strong = new_etag is not None and not new_etag.startswith("W/")
    if strong and entry.etag is not None and new_etag != entry.etag:
        return None
    headers = entry.headers.update(not_modified.headers.without(*_NOT_UPDATED_BY_304))
    # Age comes from the 304 itself, which is what was just received.
    age = not_modified.headers.get("age")
    if age is not None:
        headers = headers.set("age", age)
    merged = Response(entry.status, headers, entry.body)
    original = Request("GET", request.url, request.headers)
    stored = store_decision(
        entry.key,
        original,
        merged,
        request_time=request_time,
        response_time=response_time,
        policy=policy,
    )
    if stored is None or entry.stored_body is None:
        return stored
    return attrs.evolve(stored, stored_body=entry.stored_body)  # the content is unchanged


def invalidation_urls(request: Request, response: Response) -> list[str]:
    """Return the URLs an unsafe request's non-error response invalidates (RFC 9111 4.4).

    The target URL, and ``Location`` / ``Content-Location`` when they point at
    the same host (so a response cannot purge another site's objects).
    """
    if request.method in SAFE_METHODS or not 200 <= response.status < 400:
        return []
    urls = [request.url]
    target = _origin_of(request.url)
    for name in ("location", "content-location"):
        value = response.headers.get(name)
        if not value or _CONTROLS.search(value):
            continue  # urljoin would drop a tab or a line break: another URL than named
        try:
            absolute = normalize_url(urljoin(request.url, value))
        except (ValueError, InvalidInputError):
            continue
        if target is not None and _origin_of(absolute) == target:
            urls.append(absolute)
    return urls


def _origin_of(url: str) -> tuple[str, str] | None:
    """The (scheme, host[:port]) of *url*, normalized as cache keys are; None if it has none."""
    try:
        parts = urlsplit(normalize_url(url))
    except (ValueError, InvalidInputError):
        return None
    return (parts.scheme, parts.netloc) if parts.scheme and parts.netloc else None
