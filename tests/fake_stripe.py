"""A local HTTP server that answers like Stripe's PaymentIntent and Refund API, for tests."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


class FakeStripe:
    """PaymentIntents with manual capture, refunds, idempotency keys, and API-key checks."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def handle(
        self, path: str, form: dict[str, str], key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one POST the way Stripe would."""
        with self.lock:
            self.requests.append((path, form))
            if key and key in self.answers:
                return self.answers[key]
            answer = self._answer(path, form)
            if key:
                self.answers[key] = answer
            return answer

    def _error(self, message: str) -> tuple[int, dict[str, Any]]:
        return 400, {"error": {"type": "invalid_request_error", "message": message}}

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts == ["v1", "payment_intents"]:
            intent_id = f"pi_{secrets.token_hex(8)}"
            intent: dict[str, Any] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(4)}",
                "amount_capturable": 0,
                "amount_received": 0,
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            self.intents[intent_id] = intent
            return 200, dict(intent)
        if len(parts) == 4 and parts[1] == "payment_intents":
            found = self.intents.get(parts[2])
            if found is None:
                return 404, {"error": {"message": "No such payment_intent"}}
            intent = found
            action = parts[3]
            if action == "confirm":
                intent.update(status="requires_capture", amount_capturable=intent["amount"])
            elif action == "capture":
                if intent["status"] != "requires_capture":
                    return self._error("This PaymentIntent could not be captured")
                amount = int(form.get("amount_to_capture", intent["amount_capturable"]))
                if amount > intent["amount_capturable"]:
                    return self._error("amount_to_capture exceeds amount_capturable")
                intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
            elif action == "cancel":
                intent.update(status="canceled", amount_capturable=0)
            return 200, dict(intent)
        if parts == ["v1", "refunds"]:
            paid = self.intents.get(form["payment_intent"])
            if paid is None:
                return 404, {"error": {"message": "No such payment_intent"}}
            amount = int(form["amount"])
            intent = paid
            already = sum(
                r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
            )
            if already + amount > intent["amount_received"]:
                return self._error("Refund amount is greater than unrefunded amount")
            refund = {
                "id": f"re_{secrets.token_hex(8)}",
                "object": "refund",
                "amount": amount,
                "payment_intent": intent["id"],
                "status": "succeeded",
            }
            self.refunds[str(refund["id"])] = refund
            return 200, dict(refund)
        return 404, {"error": {"message": f"Unrecognized request URL {path}"}}


@contextmanager
def fake_stripe(api_key: str = "sk_test_fake") -> Iterator[tuple[str, FakeStripe]]:
    """Serve a FakeStripe on a free loopback port; yield its base URL and state."""
    state = FakeStripe(api_key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            import base64

            expected = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._reply(401, {"error": {"message": "Invalid API Key provided"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            status, body = state.handle(self.path, form, self.headers.get("Idempotency-Key"))
            self._reply(status, body)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
