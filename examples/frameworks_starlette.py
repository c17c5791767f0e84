"""commercekit in a Starlette app: checkout, a Stripe webhook, /metrics, and the CDN under /static.

The same shop as ``frameworks_fastapi.py`` with Starlette's plain routing:
``Mount("/static", asgi_app(edge))`` puts commercekit's caching proxy under a
prefix, ``Route``\\ s take the rest, and one exception handler turns
commercekit's typed errors into status codes.

Run: python examples/frameworks_starlette.py           (serves, uses every route, exits)
     python examples/frameworks_starlette.py --serve   (keeps serving; prints the URL)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from frameworks.demo import main, serving
from frameworks.shop import AsyncShop, CheckoutForm, WebShop, error_answer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from commercekit.cdn import asgi_app
from commercekit.errors import CommerceKitError, InvalidInputError


def create_app(shop: WebShop) -> Starlette:
    """The Starlette app over *shop*; its lifespan starts the shop and closes it and the edge."""
    edge = shop.make_edge()

    async def checkout(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise InvalidInputError("the checkout body is not JSON") from None
        status, answer = await shop.checkout(CheckoutForm.parse(data))
        return JSONResponse(answer, status)

    async def stripe_webhook(request: Request) -> Response:
        payload = await request.body()  # the raw bytes: the signature covers them exactly
        signature = request.headers.get("stripe-signature", "")
        outcome = await shop.receive_webhook(payload, signature)
        return JSONResponse({"outcome": outcome})

    async def order(request: Request) -> Response:
        found = await shop.order(request.path_params["order_id"])
        if found is None:
            return JSONResponse({"error": "no such order"}, 404)
        return JSONResponse(found)

    async def metrics(request: Request) -> Response:
        body, content_type = shop.exposition()
        return Response(body, media_type=content_type)

    async def commercekit_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommerceKitError)
        status, body, headers = error_answer(exc)
        return JSONResponse(body, status, headers=headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shop.start()
        yield
        await edge.aclose()  # a mounted app gets no lifespan events of its own
        await shop.aclose()

    return Starlette(
        routes=[
            Route("/checkout", checkout, methods=["POST"]),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/orders/{order_id}", order),
            Route("/metrics", metrics),
            Mount("/static", asgi_app(edge)),
        ],
        exception_handlers={CommerceKitError: commercekit_error},
        lifespan=lifespan,
    )


if __name__ == "__main__":
    main(
        lambda provider_url, folder: serving(
            create_app(AsyncShop(provider_url=provider_url, folder=folder))
        )
    )
