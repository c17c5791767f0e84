"""CloudFront's in-progress limits, SigV4 against botocore; the rest: the Purger contract."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from commercekit.cdn import (
    AwsCredentials,
    CloudflarePurger,
    CloudFrontPurger,
    ManualClock,
    PurgeRejectedError,
    PurgeSelector,
    PurgeUnavailableError,
)
from commercekit.cdn._signing._sigv4 import sigv4_headers
from commercekit.errors import ConfigurationError, InvalidInputError

from ._loopback import Answer, LoopbackServer, Seen

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("method", "url", "body", "headers"),
    [
        (
            "POST",
            "https://cloudfront.amazonaws.com/2020-05-31/distribution/E1/invalidation",
            b"<x/>",
            {"Content-Type": "text/xml"},
        ),
        (
            "GET",
            "https://cloudfront.amazonaws.com/2020-05-31/distribution/E1/invalidation/I2",
            b"",
            {},
        ),
        ("GET", "http://127.0.0.1:8123/a/b~c?z=1&a=x%20y&b=", b"", {"X-Custom": "  a   b "}),
    ],
)
@pytest.mark.parametrize("token", [None, "session-token"])
def test_sigv4_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    token: str | None,
) -> None:
    moment = dt.datetime.fromtimestamp(NOW, tz=dt.UTC).replace(tzinfo=None)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: moment)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(
        Credentials("AKIDEXAMPLE", "secret/key+x", token), "cloudfront", "us-east-1"
    ).add_auth(request)
    ours = sigv4_headers(
        method,
        url,
        headers,
        body,
        AwsCredentials("AKIDEXAMPLE", "secret/key+x", token),
        region="us-east-1",
        service="cloudfront",
        now=NOW,
    )
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert "hunter2" not in repr(AwsCredentials("a", "hunter2"))


def test_cloudflare_refusal_in_a_200_is_rejected() -> None:
    # the other wire formats, limits and faults: tests/contract/test_purger_contract.py
    def handler(seen: Seen) -> Answer:
        body = {"success": False, "errors": [{"code": 1}], "result": None}
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()

    async def main(base: str) -> None:
        purger = CloudflarePurger("zone9", "cf-token", base_url=base)
        with pytest.raises(PurgeRejectedError, match="code"):
            await purger.purge(PurgeSelector.everything())
        await purger.aclose()

    with LoopbackServer(handler) as server:
        asyncio.run(main(server.url))
        assert json.loads(server.seen[0].body) == {"purge_everything": True}


def test_cloudfront_batches_and_waits_for_room() -> None:
    created: list[str] = []
    polls: list[str] = []

    def handler(seen: Seen) -> Answer:
        auth = seen.headers["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/cloudfront/")
        assert "x-amz-date" in seen.headers
        if seen.method == "POST":
            assert seen.path == "/2020-05-31/distribution/E123/invalidation"
            assert seen.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><InvalidationBatch')
            inv = f"I{len(created)}"
            created.append(seen.body.decode())
            xml = f"<Invalidation><Id>{inv}</Id><Status>InProgress</Status></Invalidation>"
            return 201, {"content-type": "text/xml"}, xml.encode()
        polls.append(seen.path)
        status = "Completed" if len(polls) > 1 else "InProgress"
        return 200, {}, f"<Invalidation><Id>x</Id><Status>{status}</Status></Invalidation>".encode()

    async def main(base: str) -> None:
        clock = ManualClock(NOW)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)

        purger = CloudFrontPurger(
            "E123",
            AwsCredentials("AKID", "sk"),
            base_url=base,
            clock=clock,
            sleep=sleep,
            max_wildcards_in_progress=2,
            poll_interval_s=5,
        )
        result = await purger.purge(PurgeSelector.prefixes("/a/", "/b/", "/c/"))
        assert result.ids == ("I0", "I1")
        assert slept == [5]
        assert purger.in_progress == {"I1": (1, 1)}
        await purger.purge(PurgeSelector.urls("https://d.cloudfront.net/x.png?v=1", "/y&z.png"))
        with pytest.raises(InvalidInputError):
            await purger.purge(PurgeSelector.tags("t"))
        await purger.aclose()

    with LoopbackServer(handler) as server:
        asyncio.run(main(server.url))
    assert "<Quantity>2</Quantity><Items><Path>/a/*</Path><Path>/b/*</Path></Items>" in created[0]
    assert "<Path>/c/*</Path>" in created[1]
    assert "<Path>/x.png</Path><Path>/y&amp;z.png</Path>" in created[2]
    assert polls[0] == "/2020-05-31/distribution/E123/invalidation/I0"


def test_cloudfront_gives_up_after_max_wait() -> None:
    def handler(seen: Seen) -> Answer:
        if seen.method == "POST":
            return 201, {}, b"<Invalidation><Id>I</Id><Status>InProgress</Status></Invalidation>"
        return 200, {}, b"<Invalidation><Status>InProgress</Status></Invalidation>"

    async def main(base: str) -> None:
        clock = ManualClock(NOW)

        async def sleep(seconds: float) -> None:
            clock.advance(seconds)

        purger = CloudFrontPurger(
            "E1",
            AwsCredentials("AKID", "sk"),
            base_url=base,
            clock=clock,
            sleep=sleep,
            max_paths_in_progress=1,
            max_wait_s=30,
            poll_interval_s=10,
        )
        await purger.purge(PurgeSelector.urls("/a"))
        with pytest.raises(PurgeUnavailableError, match="no room"):
            await purger.purge(PurgeSelector.urls("/b"))
        await purger.aclose()

    with LoopbackServer(handler) as server:
        asyncio.run(main(server.url))


def test_cloudfront_refuses_a_sleep_that_cannot_be_awaited() -> None:
    def handler(seen: Seen) -> Answer:
        if seen.method == "POST":
            return 201, {}, b"<Invalidation><Id>I</Id><Status>InProgress</Status></Invalidation>"
        return 200, {}, b"<Invalidation><Status>InProgress</Status></Invalidation>"

    with pytest.raises(ConfigurationError, match="async sleep"):
        CloudFrontPurger("E1", AwsCredentials("AKID", "sk"), sleep=time.sleep)  # type: ignore[arg-type]

    async def main(base: str) -> None:
        purger = CloudFrontPurger(
            "E1", AwsCredentials("AKID", "sk"), base_url=base, clock=ManualClock(NOW),
            sleep=lambda _s: None, max_paths_in_progress=1,  # type: ignore[arg-type]
        )  # fmt: skip
        await purger.purge(PurgeSelector.urls("/a"))
        with pytest.raises(ConfigurationError, match="async sleep"):
            await purger.purge(PurgeSelector.urls("/b"))  # waits for room: the sleep is called
        await purger.aclose()

    with LoopbackServer(handler) as server:
        asyncio.run(main(server.url))


def test_cloudfront_purges_at_once_never_exceed_the_in_progress_limit() -> None:
    """Two purges that each fit alone but not together: the second waits for room."""
    in_flight: list[int] = []
    most: list[int] = [0]

    def handler(seen: Seen) -> Answer:
        if seen.method == "POST":
            in_flight.append(1)
            most[0] = max(most[0], len(in_flight))
            inv = f"I{len(in_flight)}"
            return (
                201,
                {},
                f"<Invalidation><Id>{inv}</Id><Status>InProgress</Status></Invalidation>".encode(),
            )
        in_flight.clear()  # the poll finds every invalidation done
        return 200, {}, b"<Invalidation><Status>Completed</Status></Invalidation>"

    async def main(base: str) -> None:
        clock = ManualClock(NOW)

        async def sleep(seconds: float) -> None:
            clock.advance(seconds)
            await asyncio.sleep(0)

        purger = CloudFrontPurger(
            "E1",
            AwsCredentials("AKID", "sk"),
            base_url=base,
            clock=clock,
            sleep=sleep,
            max_paths_in_progress=1,
            max_wait_s=30,
            poll_interval_s=1,
        )
        await asyncio.gather(
            purger.purge(PurgeSelector.urls("/a")), purger.purge(PurgeSelector.urls("/b"))
        )
        await purger.aclose()

    with LoopbackServer(handler) as server:
        asyncio.run(main(server.url))
    assert most[0] == 1
