"""commercekit in a Django project (synchronous views): checkout, a Stripe webhook, /metrics, CDN.

Django's views here are plain ``def`` functions served by a threaded WSGI
server, so they call the synchronous :class:`~commercekit.payments.PaymentService`
and :class:`~commercekit.repository.Database` directly: each request holds a
thread while the provider answers. commercekit's caching proxy is a WSGI app
too (``WsgiProxy``), dispatched under ``/static`` in front of Django. One
middleware turns commercekit's typed errors into status codes.

The whole project is this file (``settings.configure`` instead of a settings
module); in a real project the views go in ``views.py``, the middleware in
``MIDDLEWARE``, and the :class:`Shop` is built once in ``AppConfig.ready``.

Run: python examples/frameworks_django.py           (serves, uses every route, exits)
     python examples/frameworks_django.py --serve   (keeps serving; prints the URL)
"""

from __future__ import annotations

import json
import secrets
import socketserver
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from frameworks.demo import main
from frameworks.shop import CheckoutForm, Shop, error_answer

from commercekit.cdn import WsgiProxy
from commercekit.errors import CommerceKitError, InvalidInputError

SHOP: Shop | None = None  # built at startup (AppConfig.ready in a real project)


def shop() -> Shop:
    if SHOP is None:
        raise RuntimeError("create_app(shop) has not run")
    return SHOP


# -- views ---------------------------------------------------------------------------------


# Django ships no type hints, so its decorators leave these views untyped to mypy.
# csrf_exempt: an API called with JSON; a browser form would keep Django's CSRF check.
@csrf_exempt  # type: ignore[untyped-decorator]
@require_POST  # type: ignore[untyped-decorator]
def checkout(request: HttpRequest) -> HttpResponse:
    try:
        data = json.loads(request.body)
    except ValueError:
        raise InvalidInputError("the checkout body is not JSON") from None
    status, answer = shop().checkout(CheckoutForm.parse(data))
    return JsonResponse(answer, status=status)


@csrf_exempt  # type: ignore[untyped-decorator]  # Stripe signs the body instead
@require_POST  # type: ignore[untyped-decorator]
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    signature = request.headers.get("Stripe-Signature", "")
    return JsonResponse({"outcome": shop().receive_webhook(request.body, signature)})


def order(request: HttpRequest, order_id: str) -> HttpResponse:
    found = shop().order(order_id)
    if found is None:
        return JsonResponse({"error": "no such order"}, status=404)
    return JsonResponse(found)


def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = shop().exposition()
    return HttpResponse(body, content_type=content_type)


urlpatterns = [
    path("checkout", checkout),
    path("webhooks/stripe", stripe_webhook),
    path("orders/<str:order_id>", order),
    path("metrics", metrics),
]


class CommerceKitErrors:
    """Middleware: a :class:`CommerceKitError` from a view becomes its JSON answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, CommerceKitError):
            return None
        status, body, headers = error_answer(exc)
        return JsonResponse(body, status=status, headers=headers)


# -- the WSGI app: /static to the CDN, the rest to Django -----------------------------------

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(new_shop: Shop) -> tuple[WsgiApp, Callable[[], None]]:
    """Configure Django for *new_shop*; return the WSGI app and a function that closes it."""
    global SHOP
    SHOP = new_shop
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[f"{__name__}.CommerceKitErrors"],
            INSTALLED_APPS=[],
            DATABASES={},  # orders live in commercekit's repository, not Django's ORM
        )
        django.setup()
    django_app = WSGIHandler()
    static = WsgiProxy(new_shop.make_edge)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path_info: str = environ.get("PATH_INFO", "")
        if path_info.startswith("/static/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/static"
            environ["PATH_INFO"] = path_info[len("/static") :]
            return static(environ, start_response)
        answer: Iterable[bytes] = django_app(environ, start_response)
        return answer

    return app, static.close


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@asynccontextmanager
async def serving(provider_url: str, folder: Path) -> AsyncIterator[str]:
    """Serve the Django app with a threaded WSGI server on a free loopback port."""
    new_shop = Shop(provider_url=provider_url, folder=folder)
    app, close = create_app(new_shop)
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="django-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        close()
        new_shop.close()


if __name__ == "__main__":
    main(serving)
