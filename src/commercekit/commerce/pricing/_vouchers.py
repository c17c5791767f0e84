"""Vouchers with usage limits: N concurrent uses of a one-use voucher succeed exactly once.

A use is one guarded UPDATE, ``... SET used = used + 1 WHERE code = :c AND
used < max_uses``, plus a row in ``ck_voucher_uses`` keyed by (code, use key),
so the same order redeeming twice counts once. Release gives a use back, once.
"""

from __future__ import annotations

import decimal
import enum
from decimal import Decimal

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    or_,
    select,
    update,
)

from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import check_id, metadata, rowcount
from commercekit.errors import (
    InvalidInputError,
    InvalidStateError,
    VoucherExhaustedError,
    VoucherInvalidError,
)
from commercekit.money import Currency, Money
from commercekit.repository import Database, UnitOfWork
from commercekit.typing import WallClock

__all__ = ["Voucher", "VoucherKind", "Vouchers"]

vouchers = Table(
    "ck_vouchers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("percent", String(16), nullable=True),
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("used", Integer, nullable=False),
    Column("starts_at", Double, nullable=True),
    Column("ends_at", Double, nullable=True),
)

voucher_uses = Table(
    "ck_voucher_uses",
    metadata,
    Column("code", String(64), nullable=False),
    Column("use_key", String(128), nullable=False),
    Column("at", Double, nullable=False),
    PrimaryKeyConstraint("code", "use_key"),
)


class VoucherKind(enum.Enum):
    """A percentage off the basket, or a fixed amount in one currency."""

    PERCENT = "percent"
    FIXED = "fixed"


@attrs.frozen
class Voucher:
    """A voucher as stored."""

    code: str
    kind: VoucherKind
    percent: Decimal | None
    amount: Money | None
    max_uses: int | None
    used: int
    starts_at: float | None
    ends_at: float | None

    def discount_on(self, subtotal: Money) -> Money:
        """What this voucher takes off *subtotal* (never more than it)."""
        if self.kind is VoucherKind.PERCENT:
            if self.percent is None:
                raise InvalidStateError("a percent voucher has no percent")
            off = subtotal.multiply(self.percent / 100, rounding=decimal.ROUND_HALF_EVEN)
        else:
            if self.amount is None:
                raise InvalidStateError("an amount voucher has no amount")
            off = self.amount
        return min(off, subtotal)


class Vouchers:
    """Voucher definitions and their guarded usage counter."""

    def __init__(self, db: Database, *, m: CommerceInstruments, clock: WallClock) -> None:
        self._db = db
        self._m = m
        self._clock = clock

    def create(
        self,
        code: str,
        *,
        percent: Decimal | int | None = None,
        amount: Money | None = None,
        max_uses: int | None = None,
        starts_at: float | None = None,
        ends_at: float | None = None,
    ) -> Voucher:
        """Define a voucher: *percent* off (0-100) or a fixed *amount*, at most *max_uses* times."""
        check_id(code, "voucher code")
        if (percent is None) == (amount is None):
            raise InvalidInputError("a voucher takes either percent= or amount=")
        if percent is not None:
            percent = Decimal(percent)
            if not 0 < percent <= 100:
                raise InvalidInputError(f"percent {percent} is outside 0..100")
        if amount is not None and amount.amount_minor <= 0:
            raise InvalidInputError("a fixed voucher's amount is positive")
        if max_uses is not None and max_uses < 1:
            raise InvalidInputError("max_uses is at least 1")
        kind = VoucherKind.PERCENT if percent is not None else VoucherKind.FIXED
        with self._db.unit_of_work() as uow:
            uow.session.execute(
                vouchers.insert().values(
                    code=code,
                    kind=kind.value,
                    percent=None if percent is None else str(percent),
                    amount_minor=None if amount is None else amount.amount_minor,
                    currency=None if amount is None else amount.currency.code,
                    max_uses=max_uses,
                    used=0,
                    starts_at=starts_at,
                    ends_at=ends_at,
                )
            )
        return Voucher(code, kind, percent, amount, max_uses, 0, starts_at, ends_at)

    def get(self, code: str, *, uow: UnitOfWork | None = None) -> Voucher:
        """The voucher, or :class:`VoucherInvalidError` when no voucher has that code."""
        check_id(code, "voucher code")
        v = vouchers.c
        query = select(
            v.kind, v.percent, v.amount_minor, v.currency, v.max_uses, v.used, v.starts_at,
            v.ends_at,
        ).where(v.code == code)  # fmt: skip
        if uow is not None:
            row = uow.session.execute(query).first()
        else:
            with self._db.unit_of_work() as own:
                row = own.session.execute(query).first()
        if row is None:
            raise VoucherInvalidError(f"no voucher {code!r}")
        amount = None if row[2] is None else Money.from_minor(int(row[2]), row[3])
        return Voucher(
            code,
            VoucherKind(row[0]),
            None if row[1] is None else Decimal(row[1]),
            amount,
            row[4],
            int(row[5]),
            row[6],
            row[7],
        )

    def check(self, code: str, currency: Currency) -> Voucher:
        """The voucher if it can be used now in *currency*; :class:`VoucherInvalidError` if not."""
        voucher = self.get(code)
        now = self._clock()
        if voucher.starts_at is not None and now < voucher.starts_at:
            raise VoucherInvalidError(f"voucher {code!r} is not valid yet")
        if voucher.ends_at is not None and now >= voucher.ends_at:
            raise VoucherInvalidError(f"voucher {code!r} has expired")
        if voucher.amount is not None and voucher.amount.currency != currency:
            raise VoucherInvalidError(
                f"voucher {code!r} is in {voucher.amount.currency.code}, "
                f"the cart in {currency.code}"
            )
        if voucher.max_uses is not None and voucher.used >= voucher.max_uses:
            self._m.count("voucher_refusals_total", "exhausted")
            raise VoucherExhaustedError(f"voucher {code!r} has been used up")
        return voucher

    def redeem(self, code: str, use_key: str, *, uow: UnitOfWork | None = None) -> bool:
        """Use the voucher once for *use_key* (an order); False when that key used it already.

        Raises :class:`VoucherExhaustedError` when the last use went elsewhere.
        Pass *uow* to redeem inside the order's transaction.
        """
        check_id(use_key, "use key", max_len=128)

        def work(u: UnitOfWork) -> bool:
            s = u.session
            vu = voucher_uses.c
            if s.execute(select(vu.code).where(vu.code == code, vu.use_key == use_key)).first():
                return False
            v = vouchers.c
            if not rowcount(
                s.execute(
                    update(vouchers)
                    .where(v.code == code, or_(v.max_uses.is_(None), v.used < v.max_uses))
                    .values(used=v.used + 1)
                )
            ):
                self.get(code, uow=u)  # VoucherInvalidError when it does not exist
                self._m.count("voucher_refusals_total", "exhausted")
                raise VoucherExhaustedError(f"voucher {code!r} has been used up")
            s.execute(voucher_uses.insert().values(code=code, use_key=use_key, at=self._clock()))
            return True

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def release(self, code: str, use_key: str, *, uow: UnitOfWork | None = None) -> bool:
        """Give back the use *use_key* made (an order cancelled); False if it had none."""

        def work(u: UnitOfWork) -> bool:
            vu, v = voucher_uses.c, vouchers.c
            if not rowcount(
                u.session.execute(
                    delete(voucher_uses).where(vu.code == code, vu.use_key == use_key)
                )
            ):
                return False
            u.session.execute(update(vouchers).where(v.code == code).values(used=v.used - 1))
            return True

        return work(uow) if uow is not None else self._db.run(work, retry=True).value
