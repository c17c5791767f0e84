"""An in-process imitation of Adyen's Checkout API v71, for wire tests and the Adyen chaos run.

It speaks JSON over MockTransport, checks ``X-API-Key``, answers a repeated
``Idempotency-Key`` with the first response (as Adyen does), answers
refusals as HTTP 200 with ``resultCode`` and ``refusalReasonCode``, 3-D
Secure as ``RedirectShopper`` completed through ``/payments/details``, and
modifications as ``201 received``. It logs every change it makes per key,
so the chaos test can count charges, captures and refunds.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from typing import Any

from commercekit.payments import HttpRequest, HttpResponse

REFUSALS = {
    "4000000000000002": ("2", "Refused"),
    "4000000000009995": ("12", "Not enough balance"),
    "4000000000000069": ("6", "Expired Card"),
    "4000000000000127": ("24", "CVC Declined"),
}
THREE_DS = {"4000000000003220", "4000002500003155"}


class FakeAdyen:
    def __init__(self, *, api_key: str = "AQE_test_key") -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[int, bytes]] = {}
        self.changes: Counter[str] = Counter()
        self.requests: list[HttpRequest] = []
        self.counter = 0

    def _psp(self) -> str:
        self.counter += 1
        return f"{8800000000000000 + self.counter}"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("X-API-Key") != self.api_key:
                return self._error(401, "000", "HTTP Status Response - Unauthorized", "security")
            key = request.headers.get("Idempotency-Key", "")
            if key and key in self.keys:
                status, body = self.keys[key]
                return HttpResponse(status, {"Idempotency-Key": key}, body)
            response = self._route(request, key)
            if key and response.status < 500:
                self.keys[key] = (response.status, response.body)
            return response

    def _route(self, request: HttpRequest, key: str) -> HttpResponse:
        path = urllib.parse.urlsplit(request.url).path.strip("/").split("/")[1:]
        body = json.loads(request.body or b"{}")
        match path:
            case ["payments"]:
                return self._pay(body, key)
            case ["payments", "details"]:
                return self._details(body, key)
            case ["payments", psp, action]:
                return self._modify(psp, action, body, key)
        return self._error(404, "000", "Not found", "validation")

    def _pay(self, body: dict[str, Any], key: str) -> HttpResponse:
        method = body["paymentMethod"]
        number = method.get("number", "4242424242424242")
        psp = self._psp()
        amount = body["amount"]
        manual = (body.get("additionalData") or {}).get("manualCapture") == "true"
        payment: dict[str, Any] = {
            "psp": psp,
            "amount": amount,
            "reference": body["reference"],
            "manual": manual,
            "authorized": 0,
            "captured": 0,
            "refunded": 0,
            "status": "refused",
        }
        self.payments[psp] = payment
        answer: dict[str, Any] = {
            "pspReference": psp,
            "merchantReference": body["reference"],
            "amount": amount,
        }
        if number in REFUSALS:
            code, reason = REFUSALS[number]
            return self._ok(
                answer
                | {"resultCode": "Refused", "refusalReasonCode": code, "refusalReason": reason}
            )
        if number in THREE_DS and amount["value"] > 0:
            payment["status"] = "redirected"
            return self._ok(
                answer
                | {
                    "resultCode": "RedirectShopper",
                    "action": {
                        "type": "redirect",
                        "method": "GET",
                        "paymentMethodType": "scheme",
                        "url": f"https://checkoutshopper-test.adyen.test/3ds/{psp}",
                    },
                }
            )
        self._authorise(payment, key)
        return self._ok(answer | {"resultCode": "Authorised"})

    def _authorise(self, payment: dict[str, Any], key: str) -> None:
        value = payment["amount"]["value"]
        if value == 0:
            payment["status"] = "checked"
            return
        payment["authorized"] = value
        payment["status"] = "authorised"
        if not payment["manual"]:
            payment["captured"] = value
            payment["status"] = "captured"
        self.changes[key] += 1  # money held or taken

    def _details(self, body: dict[str, Any], key: str) -> HttpResponse:
        token = (body.get("details") or {}).get("redirectResult", "")
        payment = next((p for p in self.payments.values() if p.get("redirect") == token), None)
        if payment is None or not token:
            return self._error(422, "101", "Invalid redirectResult", "validation")
        answer = {
            "pspReference": payment["psp"],
            "merchantReference": payment["reference"],
            "amount": payment["amount"],
        }
        if payment["status"] == "redirected":
            if payment["authenticated"]:
                self._authorise(payment, key)
            else:
                payment["status"] = "refused"
        if payment["status"] == "refused":
            return self._ok(
                answer
                | {
                    "resultCode": "Refused",
                    "refusalReasonCode": "11",
                    "refusalReason": "3D Not Authenticated",
                }
            )
        return self._ok(answer | {"resultCode": "Authorised"})

    def _modify(self, psp: str, action: str, body: dict[str, Any], key: str) -> HttpResponse:
        payment = self.payments.get(psp)
        if payment is None:
            return self._error(422, "167", "Original pspReference required", "validation")
        value = int((body.get("amount") or {}).get("value", 0))
        if action == "captures":
            if payment["status"] != "authorised" or value > payment["authorized"]:
                return self._error(422, "000", "Capture not allowed", "validation")
            payment["captured"] = value
            payment["status"] = "captured"
        elif action == "cancels":
            if payment["status"] not in ("authorised", "redirected"):
                return self._error(422, "000", "Cancel not allowed", "validation")
            payment["status"] = "cancelled"
        elif action == "refunds":
            if payment["status"] != "captured" or payment["refunded"] + value > payment["captured"]:
                return self._error(422, "000", "Refund exceeds captured amount", "validation")
            payment["refunded"] += value
        else:
            return self._error(404, "000", "Not found", "validation")
        self.changes[key] += 1
        answer = {
            "merchantAccount": body.get("merchantAccount"),
            "paymentPspReference": psp,
            "pspReference": self._psp(),
            "reference": body.get("reference"),
            "status": "received",
        }
        if "amount" in body:
            answer["amount"] = body["amount"]
        return self._ok(answer, status=201)

    # -- what the tests read behind the API ---------------------------------------------

    def authenticate(self, psp: str, success: bool) -> str:
        """The shopper answers 3-D Secure; returns the redirectResult Adyen would send back."""
        with self.lock:
            payment = self.payments[psp]
            payment["authenticated"] = success
            payment["redirect"] = f"rr-{psp}-{success}"
            return str(payment["redirect"])

    def books(self, psp: str) -> tuple[int, int, int]:
        payment = self.payments[psp]
        return payment["authorized"], payment["captured"], payment["refunded"]

    # -- responses ----------------------------------------------------------------------

    @staticmethod
    def _ok(obj: dict[str, Any], status: int = 200) -> HttpResponse:
        return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())

    @staticmethod
    def _error(status: int, code: str, message: str, kind: str) -> HttpResponse:
        body = {"status": status, "errorCode": code, "message": message, "errorType": kind}
        return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())
