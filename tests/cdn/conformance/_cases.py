"""One case per RFC 9111 / RFC 5861 / RFC 9213 requirement the edge implements.

Each case asserts what the rule requires and returns what it observed (status,
body, outcome, origin requests), so that runs can be compared.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from commercekit.cdn._message._dates import format_http_date

from ._harness import Case, Seen, case

CC60 = [("cache-control", "max-age=60")]


def _etagged(c: Case, path: str, cache_control: str, extra: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    """Serve ``v1`` with ETag "1"; answer 304 to If-None-Match: "1"."""

    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("cache-control", cache_control), ("etag", '"1"'), *extra]
        if seen.headers.get("if-none-match") == '"1"':
            return 304, headers, b""
        return 200, headers, b"v1"

    return c.route(path, answer)


# -- RFC 9111 3: storing ------------------------------------------------------------------


@case("RFC 9111 3: a fresh 200 to GET is stored and reused")
async def case_store_and_reuse(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    first, second = await c.get("/a"), await c.get("/a")
    assert (first.outcome, second.outcome) == ("miss", "hit")
    assert c.hits("/a") == 1
    return [first.obs(), second.obs(), c.hits("/a")]


@case("RFC 9111 3, 5.2.1.5: a request's no-store is not stored")
async def case_request_no_store(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    await c.get("/a", {"cache-control": "no-store"})
    again = await c.get("/a")
    assert again.outcome == "miss"
    return [again.obs(), c.hits("/a")]


@case("RFC 9111 5.2.2.5: a response's no-store is not stored")
async def case_response_no_store(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "no-store, max-age=60")])
    await c.get("/a")
    await c.get("/a")
    assert c.hits("/a") == 2
    return [c.hits("/a")]


@case("RFC 9111 5.2.2.7: a shared cache does not store private")
async def case_private(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "private, max-age=60")])
    await c.get("/a")
    await c.get("/a")
    assert c.hits("/a") == 2
    return [c.hits("/a")]


@case("RFC 9111 3.5: a response to an Authorization request is not shared")
async def case_authorization(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    await c.get("/a", {"authorization": "Bearer x"})
    anonymous = await c.get("/a")
    assert anonymous.outcome == "miss"
    assert c.hits("/a") == 2
    return [anonymous.obs(), c.hits("/a")]


@case("RFC 9111 3: a Set-Cookie response is not stored (shared cache)")
async def case_set_cookie(c: Case) -> list[Any]:
    c.fixed("/a", [*CC60, ("set-cookie", "sid=1")])
    await c.get("/a")
    second = await c.get("/a")
    assert c.hits("/a") == 2
    return [second.obs(), c.hits("/a")]


@case("RFC 9111 3.1, RFC 9110 7.6.1: hop-by-hop and Connection-named fields are not stored")
async def case_connection_fields(c: Case) -> list[Any]:
    c.fixed("/a", [*CC60, ("connection", "x-hop"), ("x-hop", "1"), ("x-end", "1")])
    await c.get("/a")
    hit = await c.get("/a")
    assert hit.outcome == "hit"
    assert "x-hop" not in hit.headers
    assert hit.headers.get("x-end") == "1"
    return [hit.obs(), sorted(k for k in hit.headers if k.startswith("x-"))]


@case("RFC 9111 3.3: a 206 is not stored as the whole response")
async def case_partial_not_stored(c: Case) -> list[Any]:
    c.route("/a", lambda s: (206, [*CC60, ("content-range", "bytes 0-1/10")], b"v1"))
    await c.get("/a")
    await c.get("/a")
    assert c.hits("/a") == 2
    return [c.hits("/a")]


# -- RFC 9111 4.2: freshness -------------------------------------------------------------


@case("RFC 9111 4.2.1: max-age bounds freshness")
async def case_max_age(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "max-age=10")])
    await c.get("/a")
    c.clock.advance(9)
    fresh = await c.get("/a")
    c.clock.advance(2)
    stale = await c.get("/a")
    assert (fresh.outcome, stale.outcome) == ("hit", "miss")
    return [fresh.obs(), stale.obs(), c.hits("/a")]


@case("RFC 9111 5.2.2.10: s-maxage overrides max-age for a shared cache")
async def case_s_maxage(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "max-age=1000, s-maxage=10")])
    await c.get("/a")
    c.clock.advance(11)
    assert (await c.get("/a")).outcome == "miss"
    return [c.hits("/a")]


@case("RFC 9111 4.2.1: max-age overrides Expires")
async def case_max_age_over_expires(c: Case) -> list[Any]:
    c.route(
        "/a",
        lambda s: (
            200,
            [("cache-control", "max-age=60"), ("expires", "Thu, 01 Jan 1970 00:00:00 GMT")],
            b"v1",
        ),
    )
    await c.get("/a")
    assert (await c.get("/a")).outcome == "hit"
    return [c.hits("/a")]


@case("RFC 9111 4.2.1: Expires minus Date is the lifetime")
async def case_expires(c: Case) -> list[Any]:
    c.route("/a", lambda s: (200, [("expires", format_http_date(c.clock() + 30))], b"v1"))
    await c.get("/a")
    c.clock.advance(29)
    fresh = await c.get("/a")
    c.clock.advance(2)
    stale = await c.get("/a")
    assert (fresh.outcome, stale.outcome) == ("hit", "miss")
    return [fresh.obs(), stale.obs()]


@case("RFC 9111 5.3: an invalid Expires means already expired")
async def case_invalid_expires(c: Case) -> list[Any]:
    c.fixed("/a", [("expires", "Thu, 18 Aug 50")])
    await c.get("/a")
    second = await c.get("/a")
    assert second.outcome != "hit"
    assert c.hits("/a") == 2
    return [second.obs(), c.hits("/a")]


@case("RFC 9111 4.2.2: heuristic freshness from Last-Modified")
async def case_heuristic(c: Case) -> list[Any]:
    c.route("/a", lambda s: (200, [("last-modified", format_http_date(c.clock() - 1000))], b"v1"))
    await c.get("/a")
    c.clock.advance(99)
    fresh = await c.get("/a")
    c.clock.advance(2)
    stale = await c.get("/a")
    assert (fresh.outcome, stale.outcome) == ("hit", "miss")
    return [fresh.obs(), stale.obs()]


@case("RFC 9111 4.2.3, 5.1: Age is the upstream age plus the time resident here")
async def case_age(c: Case) -> list[Any]:
    c.fixed("/a", [*CC60, ("age", "5")])
    await c.get("/a")
    c.clock.advance(7)
    hit = await c.get("/a")
    assert hit.headers["age"] == "12"
    c.clock.advance(49)
    assert (await c.get("/a")).outcome == "miss"  # 5 + 56 > 60
    return [hit.obs(), hit.headers["age"]]


# -- RFC 9111 4.1: Vary ------------------------------------------------------------------


@case("RFC 9111 4.1: Vary selects the stored variant")
async def case_vary(c: Case) -> list[Any]:
    c.route(
        "/a",
        lambda s: (
            200,
            [*CC60, ("vary", "accept-language")],
            s.headers.get("accept-language", "").encode(),
        ),
    )
    en1 = await c.get("/a", {"accept-language": "en"})
    fr1 = await c.get("/a", {"accept-language": "fr"})
    en2 = await c.get("/a", {"accept-language": "en"})
    fr2 = await c.get("/a", {"accept-language": "fr"})
    assert (en2.body, fr2.body) == (b"en", b"fr")
    assert (en2.outcome, fr2.outcome) == ("hit", "hit")
    return [en1.obs(), fr1.obs(), en2.obs(), fr2.obs(), c.hits("/a")]


@case("RFC 9111 4.1: Vary: * never matches")
async def case_vary_star(c: Case) -> list[Any]:
    c.fixed("/a", [*CC60, ("vary", "*")])
    await c.get("/a")
    await c.get("/a")
    assert c.hits("/a") == 2
    return [c.hits("/a")]


# -- RFC 9111 4.3: validation ------------------------------------------------------------


@case("RFC 9111 4.3.1, 4.3.3: a stale response is revalidated with its ETag")
async def case_revalidate(c: Case) -> list[Any]:
    _etagged(c, "/a", "max-age=10")
    await c.get("/a")
    c.clock.advance(11)
    again = await c.get("/a")
    assert again.outcome == "revalidated"
    assert again.body == b"v1"
    return [again.obs(), c.hits("/a")]


@case("RFC 9111 4.3.4: a 304 updates the stored header fields")
async def case_304_updates(c: Case) -> list[Any]:
    state = {"n": 0}

    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        state["n"] += 1
        headers = [("cache-control", "max-age=10"), ("etag", '"1"'), ("x-n", str(state["n"]))]
        if seen.headers.get("if-none-match") == '"1"':
            return 304, headers, b""
        return 200, headers, b"v1"

    c.route("/a", answer)
    await c.get("/a")
    c.clock.advance(11)
    await c.get("/a")
    hit = await c.get("/a")
    assert hit.outcome == "hit"
    assert hit.headers["x-n"] == "2"
    return [hit.obs(), hit.headers["x-n"]]


@case("RFC 9111 5.2.2.4: no-cache is stored but validated before each use")
async def case_no_cache(c: Case) -> list[Any]:
    _etagged(c, "/a", "no-cache")
    await c.get("/a")
    second = await c.get("/a")
    assert second.outcome == "revalidated"
    assert c.hits("/a") == 2
    return [second.obs(), c.hits("/a")]


@case("RFC 9111 4.3.2: a client's If-None-Match is answered 304 from the cache")
async def case_client_conditional(c: Case) -> list[Any]:
    _etagged(c, "/a", "max-age=60")
    await c.get("/a")
    answer = await c.get("/a", {"if-none-match": '"1"'})
    assert answer.status == 304
    assert c.hits("/a") == 1
    return [answer.obs(), c.hits("/a")]


@case("RFC 9111 4: HEAD is answered from a stored GET")
async def case_head(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    await c.get("/a")
    head = await c.send("HEAD", "/a")
    assert head.status == 200
    assert head.body == b""
    assert c.hits("/a") == 1
    return [head.obs(), c.hits("/a")]


@case("RFC 9111 3.4, RFC 9110 14.2: a Range is served from the stored response")
async def case_range(c: Case) -> list[Any]:
    c.fixed("/a", CC60, b"0123456789")
    await c.get("/a")
    part = await c.get("/a", {"range": "bytes=2-4"})
    assert (part.status, part.body) == (206, b"234")
    return [part.obs(), c.hits("/a")]


@case("RFC 9111 5.2.1.7: only-if-cached with nothing stored is a 504")
async def case_only_if_cached(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    answer = await c.get("/a", {"cache-control": "only-if-cached"})
    assert answer.status == 504
    assert c.hits("/a") == 0
    return [answer.status, c.hits("/a")]


# -- RFC 9111 4.4: invalidation ----------------------------------------------------------


@case("RFC 9111 4.4: a successful POST invalidates its target")
async def case_post_invalidates(c: Case) -> list[Any]:
    c.fixed("/a", CC60)
    await c.get("/a")
    await c.send("POST", "/a", body=b"x")
    again = await c.get("/a")
    assert again.outcome == "miss"
    return [again.obs()]


@case("RFC 9111 4.4: Location and Content-Location on the same origin are invalidated")
async def case_location(c: Case) -> list[Any]:
    for path in ("/b", "/c", "/d"):
        c.fixed(path, CC60)
        await c.get(path)

    def created(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        if seen.method == "GET":
            return 200, CC60, b"v1"
        headers = [
            ("location", f"{c.prefix}/b"),
            ("content-location", f"{c.base}{c.prefix}/c"),
            ("cache-control", "no-store"),
        ]
        return 201, headers, b""

    c.route("/new", created)
    await c.send("PUT", "/new", body=b"x")
    got = [(await c.get(p)).outcome for p in ("/b", "/c", "/d")]
    assert got == ["miss", "miss", "hit"], got
    return got


@case("RFC 9111 4.4: another origin's URL in Location is not invalidated")
async def case_location_other_origin(c: Case) -> list[Any]:
    c.fixed("/b", CC60)
    await c.get("/b")
    c.route(
        "/new",
        lambda s: (201, [("location", f"http://elsewhere.test{c.prefix}/b")], b""),
    )
    await c.send("POST", "/new", body=b"x")
    assert (await c.get("/b")).outcome == "hit"
    return [c.hits("/b")]


@case("RFC 9111 4.4: an error response to POST invalidates nothing")
async def case_post_error(c: Case) -> list[Any]:
    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        return (500, [], b"") if seen.method == "POST" else (200, CC60, b"v1")

    c.route("/a", answer)
    await c.get("/a")
    posted = await c.send("POST", "/a", body=b"x")
    assert posted.status == 500
    assert (await c.get("/a")).outcome == "hit"
    return [posted.status, c.hits("/a")]


@case("RFC 9111 4.4: an unsafe request elsewhere leaves a fill in flight alone")
async def case_post_elsewhere_during_fill(c: Case) -> list[Any]:
    path = c.fixed("/slow", CC60)
    gate = c.origin.gates[path] = threading.Event()
    fill = asyncio.ensure_future(c.get("/slow"))
    await c.until(lambda: c.hits("/slow") == 1)
    await c.send("POST", "/cart", body=b"x")
    gate.set()
    first = await fill
    again = await c.get("/slow")
    assert "stored" in first.headers.get("cache-status", ""), (
        first.status,
        first.body,
        c.hits("/slow"),
    )
    assert again.outcome == "hit"
    assert c.hits("/slow") == 1
    return [first.obs(), again.obs(), c.hits("/slow")]


# -- collapsed requests ------------------------------------------------------------------


@case("RFC 9111 4 (collapsed requests): concurrent misses make one origin request")
async def case_coalescing(c: Case) -> list[Any]:
    path = c.fixed("/hot", CC60)
    gate = c.origin.gates[path] = threading.Event()
    waiting = [asyncio.ensure_future(c.get("/hot")) for _ in range(10)]

    def joined() -> bool:
        return c.metrics.value("commercekit_cdn_coalesced_waiters_total", edge="edge") >= 9

    await c.until(joined)
    gate.set()
    got = await asyncio.gather(*waiting)
    assert {g.body for g in got} == {b"v1"}
    assert c.hits("/hot") == 1
    return [sorted(g.obs() for g in got), c.hits("/hot")]


# -- RFC 5861 ----------------------------------------------------------------------------


@case("RFC 5861 3: stale-while-revalidate serves stale and refreshes in the background")
async def case_swr(c: Case) -> list[Any]:
    version = {"v": b"v1"}
    c.route(
        "/a",
        lambda s: (200, [("cache-control", "max-age=10, stale-while-revalidate=60")], version["v"]),
    )
    await c.get("/a")
    version["v"] = b"v2"
    c.clock.advance(15)
    stale = await c.get("/a")
    assert (stale.outcome, stale.body) == ("stale", b"v1")
    await c.until(lambda: c.hits("/a") == 2)
    await c.until(lambda: not c.edge._background)
    fresh = await c.get("/a")
    assert (fresh.outcome, fresh.body) == ("hit", b"v2")
    return [stale.obs(), fresh.obs()]


@case("RFC 5861 4: stale-if-error serves stale when the origin errs")
async def case_sie(c: Case) -> list[Any]:
    state = {"fail": False}
    c.route(
        "/a",
        lambda s: (
            (500, [], b"down")
            if state["fail"]
            else (200, [("cache-control", "max-age=10, stale-if-error=60")], b"v1")
        ),
    )
    await c.get("/a")
    state["fail"] = True
    c.clock.advance(15)
    stale = await c.get("/a")
    assert (stale.status, stale.body, stale.outcome) == (200, b"v1", "stale")
    c.clock.advance(60)
    late = await c.get("/a")
    assert late.status == 500
    return [stale.obs(), late.status]


@case("RFC 9111 5.2.2.2: must-revalidate is never served stale, even on error")
async def case_must_revalidate(c: Case) -> list[Any]:
    state = {"fail": False}
    c.route(
        "/a",
        lambda s: (
            (500, [], b"down")
            if state["fail"]
            else (200, [("cache-control", "max-age=10, must-revalidate, stale-if-error=60")], b"v1")
        ),
    )
    await c.get("/a")
    state["fail"] = True
    c.clock.advance(15)
    answer = await c.get("/a")
    assert answer.status == 500
    return [answer.status]


# -- RFC 9213 ----------------------------------------------------------------------------


@case("RFC 9213 2.1: CDN-Cache-Control overrides Cache-Control")
async def case_targeted(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "no-store"), ("cdn-cache-control", "max-age=60")])
    await c.get("/a")
    assert (await c.get("/a")).outcome == "hit"
    c.fixed("/b", [("cache-control", "max-age=60"), ("cdn-cache-control", "no-store")])
    await c.get("/b")
    await c.get("/b")
    assert c.hits("/b") == 2
    return [c.hits("/a"), c.hits("/b")]


@case("RFC 9213 2.1: an invalid CDN-Cache-Control is ignored")
async def case_targeted_invalid(c: Case) -> list[Any]:
    c.fixed("/a", [("cache-control", "max-age=60"), ("cdn-cache-control", "No-Store")])
    await c.get("/a")
    assert (await c.get("/a")).outcome == "hit"
    return [c.hits("/a")]
