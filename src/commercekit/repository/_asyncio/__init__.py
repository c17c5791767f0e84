"""The asyncio twins of the repository part (re-exported by ``commercekit.repository``)."""

from __future__ import annotations

from ._database import AsyncCommitted, AsyncDatabase
from ._repository import AsyncReadRepository, AsyncRepository
from ._uow import AsyncUnitOfWork

__all__ = [
    "AsyncCommitted",
    "AsyncDatabase",
    "AsyncReadRepository",
    "AsyncRepository",
    "AsyncUnitOfWork",
]
