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

import importlib
import warnings
from typing import Any

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

from ._edge._cache import EdgeCache
from ._edge._network import EdgeNetwork
from ._message._body import BodyStream
from ._message._headers import Headers
from ._message._messages import CacheOutcome, Request, Response
from ._message._stored import StoredResponse
from ._origins._directory import DirectoryOrigin
from ._origins._http import HttpOrigin
from ._origins._manifest import IMMUTABLE, AssetManifest, AssetOrigin
from ._policy._cache_control import CacheControl, parse_cache_control
from ._policy._decision import Action, CachePolicy, store_decision
from ._policy._keys import normalize_url
from ._purge._cloudfront import CloudFrontPurger
from ._purge._purgers import CloudflarePurger, FastlyPurger
from ._purge._selector import PurgeKind, PurgeResult, PurgeSelector
from ._servers._admin import AdminHandler
from ._servers._asgi import asgi_app
from ._servers._proxy import ProxyHandler
from ._servers._serve import AccessLog, ProxyServer, serve
from ._servers._wsgi import WsgiProxy
from ._signing._cloudfront import CloudFrontSigner, cloudfront_policy
from ._signing._hmac import HmacUrlSigner
from ._signing._sigv4 import AwsCredentials
from ._stores._breaker import Breaker
from ._stores._memory import MemoryStore
from ._stores._redis import RedisStore
from ._stores._tiered import TieredStore
from ._testing import ManualClock, MockOrigin
from ._typing import BodyWriter, CacheStore, Clock, Origin, Purger, StoredBody, UrlSigner

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
    "DirectoryOrigin",
    "EdgeCache",
    "EdgeNetwork",
    "FastlyPurger",
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
    "normalize_url",
    "parse_cache_control",
    "serve",
    "store_decision",
]

# Internals that were public by mistake: they left ``__all__`` and still import, with a
# warning, from here until the next minor release.
_MOVED = {
    "Coalescer": "commercekit.cdn._edge._coalesce",
    "FrequencySketch": "commercekit.cdn._stores._sketch",
    "decide": "commercekit.cdn._policy._decision",
    "sigv4_headers": "commercekit.cdn._signing._sigv4",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"commercekit.cdn.{name} is an internal of the edge cache and is no longer public; "
        "it will be removed in the next minor release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
