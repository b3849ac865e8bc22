"""Stripe: a PaymentIntent adapter over Stripe's HTTP API, and webhook signature checks."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from domain.errors import DomainError

SIGNATURE_TOLERANCE_SECONDS = 300
# Unix seconds as Stripe writes them: ASCII digits (str.isdigit() also takes "²", which int()
# refuses), and few enough that int() reads them (it refuses over 4300 digits).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class ProviderError(DomainError):
    """The payment provider refused or could not be reached."""

    code = "payment-provider-error"


class ProviderRefused(ProviderError):
    """The provider answered, and said no (a 4xx it would say again: asking again is no use)."""

    code = "payment-provider-refused"


# Answers that say "not now" rather than "no": too many requests, a request with the same
# idempotency key still running (Stripe's 409), a timeout.
_RETRYABLE = {408, 409, 425, 429}


class ProviderNotConfigured(DomainError):
    """The payment needs a provider this installation has no credentials for."""

    code = "provider-not-configured"


class InvalidSignature(DomainError):
    """A webhook whose Stripe-Signature does not verify."""

    code = "invalid-signature"


@dataclass(frozen=True)
class IntentState:
    """What the provider says about a PaymentIntent."""

    reference: str
    status: str
    client_secret: str | None
    capturable: int
    received: int


@dataclass(frozen=True)
class RefundState:
    """A refund the provider made."""

    reference: str
    amount: int


class StripeGateway:
    """PaymentIntents with manual capture, through Stripe's form-encoded HTTP API."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=api_base.rstrip("/"),
            auth=(api_key, ""),
            timeout=timeout,
            headers={"Stripe-Version": "2024-06-20"},
        )

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def _post(self, path: str, data: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            answer = self._client.post(
                path, data=data, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.HTTPError as error:
            raise ProviderError(f"Stripe could not be reached: {type(error).__name__}") from None
        try:
            body: dict[str, Any] = answer.json() if answer.content else {}
        except ValueError:  # e.g. a proxy's HTML error page
            body = {}
        if answer.status_code >= 400:
            details = body.get("error")
            message = details.get("message") if isinstance(details, dict) else None
            text = f"Stripe answered {answer.status_code}: {message or answer.reason_phrase}"
            retryable = answer.status_code >= 500 or answer.status_code in _RETRYABLE
            raise ProviderError(text) if retryable else ProviderRefused(text)
        if not isinstance(body, dict):
            raise ProviderError(f"Stripe answered {answer.status_code} without a JSON object")
        return body

    @staticmethod
    def _intent(body: dict[str, Any]) -> IntentState:
        return IntentState(
            reference=str(body["id"]),
            status=str(body["status"]),
            client_secret=body.get("client_secret"),
            capturable=int(body.get("amount_capturable") or 0),
            received=int(body.get("amount_received") or 0),
        )

    def create_intent(
        self, amount: int, currency: str, idempotency_key: str, metadata: dict[str, str]
    ) -> IntentState:
        """A PaymentIntent to be captured explicitly."""
        data: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "capture_method": "manual",
            **{f"metadata[{k}]": v for k, v in metadata.items()},
        }
        return self._intent(self._post("/v1/payment_intents", data, idempotency_key))

    def confirm(self, reference: str, idempotency_key: str) -> IntentState:
        """Confirm the PaymentIntent (the customer's payment method is attached by the client)."""
        return self._intent(
            self._post(f"/v1/payment_intents/{reference}/confirm", {}, idempotency_key)
        )

    def capture(self, reference: str, amount: int, idempotency_key: str) -> IntentState:
        """Capture `amount` of the authorized money."""
        data = {"amount_to_capture": amount}
        path = f"/v1/payment_intents/{reference}/capture"
        return self._intent(self._post(path, data, idempotency_key))

    def cancel(self, reference: str, idempotency_key: str) -> IntentState:
        """Release an uncaptured PaymentIntent."""
        path = f"/v1/payment_intents/{reference}/cancel"
        return self._intent(self._post(path, {}, idempotency_key))

    def refund(self, reference: str, amount: int, idempotency_key: str) -> RefundState:
        """Refund part of what was captured."""
        body = self._post(
            "/v1/refunds", {"payment_intent": reference, "amount": amount}, idempotency_key
        )
        return RefundState(reference=str(body["id"]), amount=int(body["amount"]))


def verify_signature(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a Stripe-Signature header as Stripe specifies, or raise InvalidSignature.

    The header is `t=<unix time>,v1=<hex>[,v1=<hex>...]`; a signature is the HMAC-SHA256 of
    `<t>.<raw body>` with the endpoint secret; any v1 may match; t must be within tolerance.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("Stripe-Signature has no timestamp or no v1 signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("Stripe-Signature timestamp is outside the tolerance")
    signed = f"{timestamp}.".encode() + payload
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("no Stripe-Signature v1 signature matches")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """A Stripe-Signature header for `payload` (what Stripe sends; used by tests and tools)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"
