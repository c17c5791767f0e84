"""What to purge: a URL, a surrogate key or tag, a URL prefix, or everything."""

from __future__ import annotations

import enum

import attrs

from commercekit.errors import InvalidInputError

__all__ = ["PurgeKind", "PurgeResult", "PurgeSelector"]


class PurgeKind(enum.Enum):
    """The kinds of purge every CDN in the anchors offers."""

    URL = "url"
    TAG = "tag"
    PREFIX = "prefix"
    ALL = "all"


def _values(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class PurgeSelector:
    """Which stored responses a purge touches. Build it with the class methods."""

    kind: PurgeKind
    values: tuple[str, ...] = attrs.field(default=(), converter=_values)

    def __attrs_post_init__(self) -> None:
        if self.kind is not PurgeKind.ALL and not self.values:
            raise InvalidInputError(f"a {self.kind.value} purge needs at least one value")
        for value in self.values:
            if not isinstance(value, str) or not value or len(value) > 8192:
                raise InvalidInputError(
                    f"purge value {value!r:.80} must be a non-empty string under 8 KiB"
                )

    @classmethod
    def urls(cls, *urls: str) -> PurgeSelector:
        """Purge these exact URLs (every stored variant of each)."""
        return cls(PurgeKind.URL, urls)

    @classmethod
    def tags(cls, *tags: str) -> PurgeSelector:
        """Purge every response tagged with one of *tags* (``Surrogate-Key``/``Cache-Tag``)."""
        return cls(PurgeKind.TAG, tags)

    @classmethod
    def prefixes(cls, *prefixes: str) -> PurgeSelector:
        """Purge every URL that starts with one of *prefixes*."""
        return cls(PurgeKind.PREFIX, prefixes)

    @classmethod
    def everything(cls) -> PurgeSelector:
        """Purge the whole cache."""
        return cls(PurgeKind.ALL, ())

    def matches(self, key: str, tags: frozenset[str]) -> bool:
        """Say whether a stored response with *key* and *tags* is selected."""
        kind = self.kind
        if kind is PurgeKind.ALL:
            return True
        if kind is PurgeKind.URL:
            return key in self.values
        if kind is PurgeKind.PREFIX:
            return key.startswith(self.values)
        return not tags.isdisjoint(self.values)


@attrs.frozen(slots=True)
class PurgeResult:
    """What a purge did: how many stored objects it touched (where known) and any remote ids."""

    purged: int | None = None
    ids: tuple[str, ...] = ()
