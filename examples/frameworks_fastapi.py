"""commercekit in a FastAPI app: checkout, a Stripe webhook, /metrics, and the CDN under /static.

- ``POST /checkout`` authorizes the payment and writes the order from an
  ``async def`` handler, so one worker keeps hundreds of checkouts waiting on
  the provider at once;
- ``POST /webhooks/stripe`` verifies Stripe's signature and handles each event once;
- ``GET /metrics`` is the Prometheus page of every part;
- ``/static`` is commercekit's caching proxy (an ASGI app) mounted under a prefix;
- commercekit's typed errors become status codes in one exception handler.

Run: python examples/frameworks_fastapi.py           (serves, uses every route, exits)
     python examples/frameworks_fastapi.py --serve   (keeps serving; prints the URL)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from frameworks.demo import main, serving
from frameworks.shop import AsyncShop, CheckoutForm, WebShop, error_answer
from pydantic import BaseModel

from commercekit.cdn import asgi_app
from commercekit.errors import CommerceKitError


class CheckoutIn(BaseModel):
    order_id: str
    amount: str  # a decimal string ("19.99"): money is never a float
    currency: str
    payment_method: str  # a token from Stripe.js (pm_...), never a card number


def create_app(shop: WebShop) -> FastAPI:
    """The FastAPI app over *shop*; its lifespan starts the shop and closes it and the edge."""
    edge = shop.make_edge()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await shop.start()
        yield
        await edge.aclose()  # a mounted app gets no lifespan events of its own
        await shop.aclose()

    app = FastAPI(lifespan=lifespan)
    app.mount("/static", asgi_app(edge))

    @app.exception_handler(CommerceKitError)
    async def commercekit_error(request: Request, exc: CommerceKitError) -> JSONResponse:
        status, body, headers = error_answer(exc)
        return JSONResponse(body, status, headers=headers)

    @app.post("/checkout")
    async def checkout(body: CheckoutIn) -> JSONResponse:
        status, answer = await shop.checkout(CheckoutForm.parse(body.model_dump()))
        return JSONResponse(answer, status)

    @app.post("/webhooks/stripe")
    async def stripe_webhook(
        request: Request, stripe_signature: Annotated[str, Header()] = ""
    ) -> dict[str, str]:
        payload = await request.body()  # the raw bytes: the signature covers them exactly
        outcome = await shop.receive_webhook(payload, stripe_signature)
        return {"outcome": outcome}

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        found = await shop.order(order_id)
        if found is None:
            raise HTTPException(404, f"no order {order_id!r}")
        return found

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = shop.exposition()
        return Response(body, media_type=content_type)

    return app


if __name__ == "__main__":
    main(
        lambda provider_url, folder: serving(
            create_app(AsyncShop(provider_url=provider_url, folder=folder))
        )
    )
