"""What a shared cache must refuse to parse loosely (RFC 9110 5.6.7, 7.6.1; RFC 9111; RFC 9213)."""

from __future__ import annotations

import asyncio
import time

import pytest

from commercekit.cdn import (
    EdgeCache,
    Headers,
    HmacUrlSigner,
    MemoryStore,
    MockOrigin,
    PurgeSelector,
    Response,
    SignatureError,
)
from commercekit.cdn._message._dates import parse_http_date
from commercekit.cdn._message._headers import without_hop_by_hop
from commercekit.cdn._policy._decision import response_directives
from commercekit.errors import InvalidInputError

NOV_6_1994 = 784111777.0


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        " Sun, 06 Nov 1994 08:49:37 GMT\t",  # optional whitespace around a field value
    ],
)
def test_the_three_http_date_formats_parse(value: str) -> None:
    assert parse_http_date(value) == NOV_6_1994


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 18 Aug 50",  # two-digit year, no time
        "Thu, 18 Aug 2050 00:00:00 UTC",  # wrong zone name
        "Thu, 18 Aug 2050 00:00:00 PST",
        "Thu, 18 Aug 2050 00:00:00 +0000",
        "Thu 18 Aug 2050 00:00:00 GMT",  # missing comma
        "Thu, 18-Aug-2050 00:00:00 GMT",  # dashes
        "Thu,  18 Aug 2050 00:00:00 GMT",  # extra space
        "Thu, 18  Aug 2050 00:00:00 GMT",
        "Thu, 18 Aug 2050 00:00:00 GMT, Fri, 19 Aug 2050 00:00:00 GMT",  # several lines
        "Thu, 18 Aug 2050 00:00:00 GMT\r\nX: y",
        "thu, 18 Aug 2050 00:00:00 GMT",  # names are case-sensitive
        "Thu, 18 aug 2050 00:00:00 GMT",
        "Thu, 8 Aug 2050 00:00:00 GMT",  # one-digit day
        "Thu, 18 Aug 2050 24:00:00 GMT",
        "Thu, 31 Feb 2050 00:00:00 GMT",
        "Thu, \uff11\uff18 Aug 2050 00:00:00 GMT",  # full-width digits
        "Thursday, 18-Aug-2050 00:00:00 GMT",  # RFC 850 has a two-digit year
        "Thu, 18-Aug-50 00:00:00 GMT",  # RFC 850 names the whole day
        "Thu Aug 18 00:00:00 2050 GMT",  # asctime has no zone
        "0",
        "",
    ],
)
def test_invalid_dates_are_not_dates(value: str) -> None:
    assert parse_http_date(value) is None


def test_rfc850_two_digit_years_are_at_most_50_years_ahead() -> None:
    this_year = time.gmtime().tm_year
    parsed = parse_http_date(f"Sunday, 06-Nov-{(this_year + 60) % 100:02d} 08:49:37 GMT")
    assert parsed is not None
    assert time.gmtime(parsed).tm_year == this_year + 60 - 100


def _edge_with(headers: list[tuple[str, str]]) -> tuple[EdgeCache, MockOrigin]:
    origin = MockOrigin(lambda r: Response(200, Headers(headers), b"body"))
    return EdgeCache(origin, MemoryStore(1 << 20)), origin


@pytest.mark.parametrize(
    "expires",
    [
        [("expires", "Thu, 18 Aug 50")],
        [("expires", "Thu, 18 Aug 2050 00:00:00 UTC")],
        [
            ("expires", "Thu, 18 Aug 2050 00:00:00 GMT"),
            ("expires", "Fri, 19 Aug 2050 00:00:00 GMT"),
        ],
    ],
)
def test_an_invalid_expires_is_already_expired(expires: list[tuple[str, str]]) -> None:
    async def main() -> None:
        edge, origin = _edge_with(expires)
        async with edge:
            await edge.get("http://shop.test/a")
            await edge.get("http://shop.test/a")
        assert len(origin.requests) == 2  # stale at once: each request goes to the origin

    asyncio.run(main())


@pytest.mark.parametrize(
    "targeted",
    [
        "max-age=60, private=",  # not a Dictionary
        "Max-Age=600",  # keys are lower case
        "max-age=600,, public",
        "max-age=600 public",
        'max-age="600',
        "max-age=600, ",
        "",
    ],
)
def test_an_invalid_cdn_cache_control_is_ignored(targeted: str) -> None:
    headers = Headers({"cdn-cache-control": targeted, "cache-control": "max-age=5"})
    assert response_directives(headers).max_age == 5


@pytest.mark.parametrize(
    ("targeted", "max_age", "no_store"),
    [
        ("max-age=600", 600, False),
        ("max-age=600;foo=bar, no-store=?0", 600, False),
        ('max-age="600", no-store', None, True),  # a value of the wrong type is ignored
        ("max-age=-1", None, False),
        ("no-store, max-age=1, max-age=2", 2, True),  # a Dictionary keeps the last
    ],
)
def test_a_valid_cdn_cache_control_wins(targeted: str, max_age: int | None, no_store: bool) -> None:
    cc = response_directives(Headers({"cdn-cache-control": targeted, "cache-control": "max-age=5"}))
    assert cc.max_age == max_age
    assert cc.no_store is no_store


def test_fields_named_in_connection_are_neither_stored_nor_served() -> None:
    headers = [
        ("cache-control", "max-age=60"),
        ("connection", "x-secret, Keep-Alive"),
        ("x-secret", "per-hop"),
        ("keep-alive", "timeout=5"),
        ("x-kept", "yes"),
    ]
    assert list(without_hop_by_hop(Headers(headers))) == ["cache-control", "x-kept"]

    async def main() -> None:
        edge, _ = _edge_with(headers)
        async with edge:
            for _ in range(2):
                response = await edge.get("http://shop.test/a")
                assert "x-secret" not in response.headers
                assert response.headers.get("x-kept") == "yes"

    asyncio.run(main())


def test_vary_hints_are_bounded_and_a_full_purge_frees_them() -> None:
    async def main() -> None:
        edge = EdgeCache(
            MockOrigin(
                lambda r: Response(
                    200, Headers({"cache-control": "max-age=60", "vary": "accept"}), b"x"
                )
            ),
            MemoryStore(256 * 1024),
            max_vary_hints=100,
        )
        async with edge:
            for i in range(300):
                await edge.get(f"http://shop.test/{i}", {"accept": "a"})
            assert len(edge._vary_hints) == 100
            await edge.purge(PurgeSelector.everything())
            assert len(edge._vary_hints) == 0

    asyncio.run(main())


def test_variants_per_url_are_bounded_and_lookups_stay_cheap() -> None:
    async def main() -> None:
        store = MemoryStore(64 * 1024 * 1024)
        edge = EdgeCache(
            MockOrigin(
                lambda r: Response(
                    200, Headers({"cache-control": "max-age=60", "vary": "user-agent"}), b"x"
                )
            ),
            store,
        )
        async with edge:
            for i in range(1000):
                await edge.get("http://shop.test/v", {"user-agent": f"bot/{i}"})
            assert len(await store.get("http://shop.test/v")) <= 32
            await edge.get("http://shop.test/one", {"user-agent": "bot/1"})

            async def cost(url: str, agents: list[str]) -> float:
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    for agent in agents:
                        await edge.get(url, {"user-agent": agent})
                    best = min(best, time.perf_counter() - started)
                return best

            crowded = await cost("http://shop.test/v", [f"bot/{999 - i % 30}" for i in range(100)])
            alone = await cost("http://shop.test/one", ["bot/1"] * 100)
            assert crowded < 4 * alone  # a hit among 32 variants costs about one alone

    asyncio.run(main())


@pytest.mark.parametrize("inserted", ["\t", "\r\n", "\n", "\r", " ", "\x00", "\x7f"])
def test_a_url_with_controls_is_refused_not_keyed_as_another(inserted: str) -> None:
    async def main() -> None:
        edge, origin = _edge_with([("cache-control", "max-age=60")])
        async with edge:
            with pytest.raises(InvalidInputError):
                await edge.get(f"http://shop.test/b.j{inserted}pg")
            with pytest.raises(InvalidInputError):
                await edge.purge(PurgeSelector.urls(f"http://shop.test/b.j{inserted}pg"))
            assert origin.requests == []

    asyncio.run(main())


@pytest.mark.parametrize("inserted", ["\t", "\r\n", "\n", " ", "\x00"])
def test_a_signed_url_with_controls_inserted_is_refused(inserted: str) -> None:
    signer = HmacUrlSigner(b"k" * 32)
    url = signer.sign("https://cdn.test/img/a.jpg", expires_at=time.time() + 60)
    signer.verify(url)
    cut = url.index("/img/") + 4
    with pytest.raises(SignatureError):
        signer.verify(url[:cut] + inserted + url[cut:])


@pytest.mark.parametrize(
    "field", ["bytes=\u00b2-3", "bytes=0-\u0663", "bytes=\u0661-2", "bytes=1_0-20"]
)
def test_a_range_with_other_digits_is_ignored(field: str) -> None:
    async def main() -> None:
        edge, _ = _edge_with([("cache-control", "max-age=60")])
        async with edge:
            await edge.get("http://shop.test/a")
            response = await edge.get("http://shop.test/a", {"range": field})
            assert (response.status, response.body) == (200, b"body")

    asyncio.run(main())
