"""What every recording backend shares: name rules, one meaning per name, the series limit.

A *metric* is a name with one kind, unit, description and set of tag names; a
*series* is that metric with one set of tag values. Backends keep their series
in a :class:`SeriesTable`, which checks each new instrument against the
metric's first definition and caps the series per metric: past the cap, new
tag sets share one overflow series whose every tag value is ``__overflow__``,
so totals are kept while memory and scrape size stay bounded.
"""

from __future__ import annotations

import enum
import math
import re
import sys
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs

from commercekit.errors import ConfigurationError, InvalidInputError, UnsupportedTypeError

from ._self import SERIES_OVERFLOW
from ._typing import Tags

__all__ = [
    "DEFAULT_MAX_SERIES_PER_METRIC",
    "MAX_VALUE",
    "OVERFLOW_TAG_VALUE",
    "Kind",
    "MetricSpec",
    "SeriesKey",
    "SeriesTable",
    "TagItems",
    "bad_increment",
    "bad_value",
    "negative_increment",
]

DEFAULT_MAX_SERIES_PER_METRIC = 2000
OVERFLOW_TAG_VALUE = "__overflow__"

TagItems = tuple[tuple[str, str], ...]
"""Tags as sorted ``(name, value)`` pairs: hashable, and one spelling per tag set."""

SeriesKey = tuple[str, TagItems]

# What Prometheus and OpenTelemetry both accept: a letter first (OpenTelemetry
# refuses '_' and ':' there), then letters, digits and '_' (OpenTelemetry
# refuses ':'), at most 255 characters in all.
_METRIC_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,254}\Z")
_UNIT = re.compile(r"[!-~]{1,40}\Z")  # printable ASCII, no space: OpenTelemetry's rule, braced
_TAG_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class Kind(enum.Enum):
    """The kinds of instrument."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@attrs.frozen
class MetricSpec:
    """What a metric name means, fixed by its first instrument."""

    name: str
    kind: Kind
    unit: str
    description: str
    tag_names: tuple[str, ...]


REAL = (int, float)
"""The types a measurement may have (bool counts as an int)."""
INF = math.inf
MAX_VALUE = sys.float_info.max
"""The largest measurement: every backend holds values as floats (an int past it overflows)."""


def _shown(value: float) -> str:
    if isinstance(value, int) and abs(value) > MAX_VALUE:
        return "an int past the float range"
    return repr(value)


def bad_increment(amount: object) -> InvalidInputError | UnsupportedTypeError:
    """The error for ``counter.inc(amount)`` when *amount* is not finite and 0 or more."""
    if not isinstance(amount, REAL):
        return UnsupportedTypeError(
            f"a counter takes an int or a float, not {type(amount).__name__}"
        )
    if amount < 0:
        return negative_increment(amount)
    return InvalidInputError(
        f"a counter takes finite increments; inc({_shown(amount)}) would poison it for good"
    )


def bad_value(kind: str, value: object) -> InvalidInputError | UnsupportedTypeError:
    """The error for a gauge or histogram *value* that is not a finite int or float."""
    if not isinstance(value, REAL):
        return UnsupportedTypeError(f"a {kind} takes an int or a float, not {type(value).__name__}")
    return InvalidInputError(f"a {kind} takes finite values, not {_shown(value)}")


def negative_increment(amount: float) -> InvalidInputError:
    """The error for ``counter.inc(amount)`` with a negative *amount*, the same in every backend."""
    return InvalidInputError(
        f"a counter only goes up; inc({_shown(amount)}) is negative "
        "(use a gauge for values that fall)"
    )


def tag_items(name: str, tags: Tags | None) -> TagItems:
    """Validate *tags* of metric *name* and return them as sorted pairs."""
    if not tags:
        return ()
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_NAME.match(key) or key.startswith("__"):
            raise ConfigurationError(
                f"tag name {key!r} of metric {name!r} is not valid: use letters, digits and "
                "underscores, not starting with a digit or '__'"
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"tag {key!r} of metric {name!r} has a {type(value).__name__} value; "
                "tag values must be str (format numbers yourself)"
            )
    return tuple(sorted(tags.items()))


_S = TypeVar("_S")


class SeriesTable(Generic[_S]):
    """The series of one backend, keyed by name and tags, with the per-metric cap.

    *make* builds a backend's series for a spec and tag pairs; it is called
    once per series, under the table's lock. *on_overflow* is called (outside
    the lock) with the metric's name each time a new tag set is folded into
    the overflow series.
    """

    def __init__(
        self,
        make: Callable[[MetricSpec, TagItems], _S],
        *,
        max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
        on_overflow: Callable[[str], None] | None = None,
    ) -> None:
        if max_series_per_metric < 1:
            raise ConfigurationError(
                f"max_series_per_metric must be at least 1, not {max_series_per_metric}"
            )
        self._make = make
        self._limit = max_series_per_metric
        self._on_overflow = on_overflow
        self._lock = threading.Lock()
        self._specs: dict[str, MetricSpec] = {}
        self._series: dict[SeriesKey, _S] = {}
        self._counts: dict[str, int] = {}

    def get(self, kind: Kind, name: str, unit: str, description: str, tags: Tags | None) -> _S:
        """Return the series for *name* and *tags*, creating it (or the overflow) if new."""
        return self.find(kind, name, unit, description, tags)[0]

    def find(
        self, kind: Kind, name: str, unit: str, description: str, tags: Tags | None
    ) -> tuple[_S, bool]:
        """:meth:`get`, and whether the series is the tag set's own (False: the overflow)."""
        items = tag_items(name, tags)
        key = (name, items)
        spec = MetricSpec(name, kind, unit, description, tuple(k for k, _ in items))
        overflowed = False
        with self._lock:
            self._check(spec)
            series = self._series.get(key)
            if series is None:
                if self._counts.get(name, 0) >= self._limit:
                    overflowed = True
                    key = (name, tuple((k, OVERFLOW_TAG_VALUE) for k, _ in items))
                    series = self._series.get(key)
                if series is None:
                    series = self._make(self._specs[name], key[1])
                    self._series[key] = series
                    self._counts[name] = self._counts.get(name, 0) + 1
        if overflowed and self._on_overflow is not None and name != SERIES_OVERFLOW:
            self._on_overflow(name)
        return series, not overflowed

    def items(self) -> list[tuple[SeriesKey, MetricSpec, _S]]:
        """Every series with its key and spec, in creation order."""
        with self._lock:
            return [(key, self._specs[key[0]], series) for key, series in self._series.items()]

    def _check(self, spec: MetricSpec) -> None:
        if not _METRIC_NAME.match(spec.name):
            raise ConfigurationError(
                f"metric name {spec.name[:80]!r} is not valid: use letters, digits and "
                "underscores, starting with a letter, at most 255 characters "
                "(commercekit_<part>_<name>_<unit>)"
            )
        if not isinstance(spec.unit, str) or not _UNIT.match(spec.unit):
            raise ConfigurationError(
                f"the unit of metric {spec.name!r} is 1 to 40 printable ASCII characters "
                "without spaces, such as 'seconds', 'bytes' or '1'"
            )
        if not isinstance(spec.description, str):
            raise ConfigurationError(f"the description of metric {spec.name!r} is a str")
        known = self._specs.setdefault(spec.name, spec)
        if known != spec:
            differences = ", ".join(
                f"{field.name} {getattr(known, field.name)!r} != {getattr(spec, field.name)!r}"
                for field in attrs.fields(MetricSpec)
                if getattr(known, field.name) != getattr(spec, field.name)
            )
            raise ConfigurationError(
                f"metric {spec.name!r} was first created with another definition "
                f"({differences}); one name must keep one kind, unit, description and "
                "set of tag names"
            )
