"""An in-process imitation of Stripe's PaymentIntents API, for wire tests and the Stripe chaos run.

It speaks the same form-encoded HTTP as Stripe (through MockTransport), keeps
idempotency keys as Stripe does (same key and parameters: the same answer;
other parameters: 400 idempotency_error), and logs every change it makes per
key, so the chaos test can count charges, captures and refunds.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from typing import Any

from commercekit.payments import HttpRequest, HttpResponse

DECLINES = {
    "4000000000000002": {"code": "card_declined", "decline_code": "generic_decline"},
    "4000000000009995": {"code": "card_declined", "decline_code": "insufficient_funds"},
    "4000000000000069": {"code": "expired_card"},
}
THREE_DS = {"4000000000003220", "4000002500003155"}


def parse_form(body: bytes) -> dict[str, Any]:
    """Undo Stripe's bracket encoding into nested dicts."""
    out: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    def __init__(self, *, honor_idempotency_keys: bool = True) -> None:
        self.honor = honor_idempotency_keys
        self.lock = threading.Lock()
        self.methods: dict[str, str] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.setups: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[str, int, bytes]] = {}
        self.changes: Counter[str] = Counter()
        self.requests: list[HttpRequest] = []
        self.counter = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter:010d}"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("Authorization", "")[:10] != "Bearer sk_":
                return self._error(401, "invalid_request_error", "Invalid API Key provided")
            key = request.headers.get("Idempotency-Key")
            if request.method == "POST" and key and self.honor:
                seen = self.keys.get(key)
                signature = f"{request.url}|{request.body!r}"
                if seen is not None:
                    if seen[0] != signature:
                        return self._error(
                            400,
                            "idempotency_error",
                            "Keys can only be used with the same parameters",
                        )
                    return HttpResponse(seen[1], {"Idempotent-Replayed": "true"}, seen[2])
                response = self._route(request)
                if response.status < 500:
                    self.keys[key] = (signature, response.status, response.body)
                return response
            return self._route(request)

    def _route(self, request: HttpRequest) -> HttpResponse:
        parts = urllib.parse.urlsplit(request.url)
        path = parts.path.strip("/").split("/")[1:]
        query = dict(urllib.parse.parse_qsl(parts.query))
        form = parse_form(request.body) if request.method == "POST" else {}
        key = request.headers.get("Idempotency-Key", "")
        match (request.method, path):
            case ("POST", ["payment_methods"]):
                pm = self._id("pm")
                self.methods[pm] = form["card"]["number"]
                return self._ok({"id": pm, "object": "payment_method"})
            case ("POST", ["payment_intents"]):
                return self._create_intent(form, key)
            case ("GET", ["payment_intents"]):
                items = sorted(self.intents.values(), key=lambda i: i["created"], reverse=True)
                return self._ok({"object": "list", "data": items[: int(query.get("limit", 10))]})
            case ("GET", ["payment_intents", pid]):
                return self._ok(self.intents[pid]) if pid in self.intents else self._missing()
            case ("POST", ["payment_intents", pid, action]):
                return self._intent_action(pid, action, form, key)
            case ("POST", ["refunds"]):
                return self._refund(form, key)
            case ("GET", ["refunds"]):
                pid = query.get("payment_intent")
                items = [r for r in self.refunds.values() if r["payment_intent"] == pid]
                return self._ok(
                    {"object": "list", "data": items[::-1][: int(query.get("limit", 10))]}
                )
            case ("POST", ["setup_intents"]):
                sid = self._id("seti")
                self.setups[sid] = {
                    "id": sid,
                    "status": "requires_payment_method",
                    "metadata": form.get("metadata", {}),
                    "created": self.counter,
                }
                return self._ok(self.setups[sid])
            case ("POST", ["setup_intents", sid, "confirm"]):
                setup = self.setups[sid]
                number = self.methods.get(form.get("payment_method", ""), "4242424242424242")
                if number in DECLINES:
                    setup["last_setup_error"] = DECLINES[number]
                    return self._error(
                        402, "card_error", "Your card was declined.", **DECLINES[number]
                    )
                setup["status"] = "succeeded"
                return self._ok(setup)
            case ("GET", ["setup_intents"]):
                return self._ok({"object": "list", "data": list(self.setups.values())[::-1]})
        return self._missing()

    def _create_intent(self, form: dict[str, Any], key: str) -> HttpResponse:
        method = form.get("payment_method", "")
        number = self.methods.get(method, "4242424242424242")
        pid = self._id("pi")
        intent: dict[str, Any] = {
            "id": pid,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "capture_method": form.get("capture_method", "automatic"),
            "metadata": form.get("metadata", {}),
            "amount_received": 0,
            "client_secret": f"{pid}_secret_x",
            "created": self.counter,
            "next_action": None,
            "last_payment_error": None,
            "_number": number,
        }
        self.intents[pid] = intent
        if number in DECLINES:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = DECLINES[number]
            return self._error(
                402,
                "card_error",
                "Your card was declined.",
                payment_intent=self._public(intent),
                **DECLINES[number],
            )
        if number in THREE_DS:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"https://hooks.invalid/3ds/{pid}"},
            }
            return self._ok(intent)
        self.changes[key] += 1  # money held or taken
        self._confirm(intent)
        return self._ok(intent)

    def _confirm(self, intent: dict[str, Any]) -> None:
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]

    def _intent_action(self, pid: str, action: str, form: dict[str, Any], key: str) -> HttpResponse:
        intent = self.intents.get(pid)
        if intent is None:
            return self._missing()
        if action == "capture":
            if intent["status"] != "requires_capture":
                return self._error(
                    400,
                    "invalid_request_error",
                    f"cannot capture a PaymentIntent that is {intent['status']}",
                )
            amount = int(form.get("amount_to_capture", intent["amount"]))
            if amount > intent["amount"]:
                return self._error(
                    400,
                    "invalid_request_error",
                    "amount_to_capture is greater than the amount capturable",
                )
            intent["amount_received"] = amount
            intent["status"] = "succeeded"
            self.changes[key] += 1
            return self._ok(intent)
        if action == "cancel":
            if intent["status"] not in (
                "requires_capture",
                "requires_action",
                "requires_payment_method",
            ):
                return self._error(400, "invalid_request_error", "cannot cancel")
            intent["status"] = "canceled"
            self.changes[key] += 1
            return self._ok(intent)
        if action == "_authenticate":
            if form.get("success") == "true":
                intent["next_action"] = None
                self.changes[key] += 1
                self._confirm(intent)
            else:
                intent["next_action"] = None
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"code": "payment_intent_authentication_failure"}
            return self._ok(intent)
        return self._missing()

    def _refund(self, form: dict[str, Any], key: str) -> HttpResponse:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return self._missing()
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(form.get("amount", intent["amount_received"] - refunded))
        if intent["status"] != "succeeded" or refunded + amount > intent["amount_received"]:
            return self._error(
                400,
                "invalid_request_error",
                "Refund amount is greater than unrefunded amount on charge",
            )
        rid = self._id("re")
        self.refunds[rid] = {
            "id": rid,
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "metadata": form.get("metadata", {}),
        }
        self.changes[key] += 1
        return self._ok(self.refunds[rid])

    # -- what the chaos test reads behind the API --------------------------------------

    def authenticate(self, pid: str, success: bool) -> None:
        with self.lock:
            self._intent_action(
                pid, "_authenticate", {"success": "true" if success else "false"}, f"3ds:{pid}"
            )

    def books(self, pid: str) -> tuple[int, int, int]:
        intent = self.intents[pid]
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pid)
        return intent["amount"], intent["amount_received"], refunded

    # -- responses ----------------------------------------------------------------------

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _ok(self, obj: dict[str, Any]) -> HttpResponse:
        return HttpResponse(
            200, {"Content-Type": "application/json"}, json.dumps(self._public(obj)).encode()
        )

    @staticmethod
    def _error(status: int, kind: str, message: str, **extra: Any) -> HttpResponse:
        body = {"error": {"type": kind, "message": message, **extra}}
        return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _missing(self) -> HttpResponse:
        return self._error(404, "invalid_request_error", "No such object")
