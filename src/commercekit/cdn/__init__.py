"""``commercekit.cdn``: an RFC 9111 edge cache, its stores, purging, signed URLs and assets.

:class:`EdgeCache` sits in front of an :class:`Origin` and keeps responses in
a :class:`CacheStore` (:class:`MemoryStore` in process, ``RedisStore`` shared);
one origin request per key however many callers miss it; stale copies while
revalidating or while the origin is down, as the headers allow; purges by
URL, tag, prefix or everything, soft or hard. ``HttpOrigin``, the proxy apps
and the purgers need the ``[cdn]`` extra, ``RedisStore`` the ``[redis]``
extra; they are imported on first use.
"""

from __future__ import annotations

from commercekit.errors import (
    MalformedHeaderError,
    OriginError,
    OriginTimeoutError,
    PurgeRejectedError,
    PurgeUnavailableError,
    SignatureError,
    SignatureExpiredError,
    StoreUnavailableError,
)

from ._admin import AdminHandler
from ._asgi import asgi_app
from ._body import BodyStream
from ._breaker import Breaker
from ._cache_control import CacheControl, parse_cache_control
from ._coalesce import Coalescer
from ._edge import EdgeCache
from ._headers import Headers
from ._keys import normalize_url
from ._manifest import IMMUTABLE, AssetManifest, AssetOrigin
from ._memory_store import MemoryStore
from ._messages import CacheOutcome, Request, Response
from ._network import EdgeNetwork
from ._origin_dir import DirectoryOrigin
from ._origin_http import HttpOrigin
from ._policy import Action, CachePolicy, decide, store_decision
from ._proxy import ProxyHandler
from ._purge import PurgeKind, PurgeResult, PurgeSelector
from ._purger_cloudfront import CloudFrontPurger
from ._purgers import CloudflarePurger, FastlyPurger
from ._redis_store import RedisStore
from ._server import AccessLog, ProxyServer, serve
from ._sign_cloudfront import CloudFrontSigner, cloudfront_policy
from ._sign_hmac import HmacUrlSigner
from ._sigv4 import AwsCredentials, sigv4_headers
from ._sketch import FrequencySketch
from ._stored import StoredResponse
from ._testing import ManualClock, MockOrigin
from ._tiered import TieredStore
from ._typing import BodyWriter, CacheStore, Clock, Origin, Purger, StoredBody, UrlSigner
from ._wsgi import WsgiProxy

__all__ = [
    "IMMUTABLE",
    "AccessLog",
    "Action",
    "AdminHandler",
    "AssetManifest",
    "AssetOrigin",
    "AwsCredentials",
    "BodyStream",
    "BodyWriter",
    "Breaker",
    "CacheControl",
    "CacheOutcome",
    "CachePolicy",
    "CacheStore",
    "Clock",
    "CloudFrontPurger",
    "CloudFrontSigner",
    "CloudflarePurger",
    "Coalescer",
    "DirectoryOrigin",
    "EdgeCache",
    "EdgeNetwork",
    "FastlyPurger",
    "FrequencySketch",
    "Headers",
    "HmacUrlSigner",
    "HttpOrigin",
    "MalformedHeaderError",
    "ManualClock",
    "MemoryStore",
    "MockOrigin",
    "Origin",
    "OriginError",
    "OriginTimeoutError",
    "ProxyHandler",
    "ProxyServer",
    "PurgeKind",
    "PurgeRejectedError",
    "PurgeResult",
    "PurgeSelector",
    "PurgeUnavailableError",
    "Purger",
    "RedisStore",
    "Request",
    "Response",
    "SignatureError",
    "SignatureExpiredError",
    "StoreUnavailableError",
    "StoredBody",
    "StoredResponse",
    "TieredStore",
    "UrlSigner",
    "WsgiProxy",
    "asgi_app",
    "cloudfront_policy",
    "decide",
    "normalize_url",
    "parse_cache_control",
    "serve",
    "sigv4_headers",
    "store_decision",
]
