"""Stripe-Signature checks exactly as Stripe specifies them."""

from __future__ import annotations

import pytest

from application.stripe import InvalidSignature, sign, verify_signature

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = 1_800_000_000


def test_a_correctly_signed_body_verifies() -> None:
    verify_signature(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW + 10)


def test_any_of_several_v1_signatures_may_match() -> None:
    good = sign(BODY, SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v0=ignored"
    verify_signature(BODY, header, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("body", "header", "now"),
    [
        (BODY, sign(BODY, "whsec_other", NOW), NOW),  # wrong secret
        (BODY, sign(BODY, SECRET, NOW), NOW + 301),  # stale timestamp
        (BODY, sign(BODY, SECRET, NOW), NOW - 301),  # from the future
        (BODY + b" ", sign(BODY, SECRET, NOW), NOW),  # tampered body
        (BODY, f"t={NOW}", NOW),  # no signature
        (BODY, "v1=abc", NOW),  # no timestamp
        (BODY, "", NOW),
    ],
    ids=["wrong secret", "stale", "future", "tampered body", "no v1", "no t", "empty"],
)
def test_bad_signatures_are_refused(body: bytes, header: str, now: int) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(body, header, SECRET, now=now)


@pytest.mark.parametrize(
    "timestamp",
    ["\u00b2", "1\u00b2", "\u0661\u0662\u0663", "9" * 5000, "1" * 13, "+1800000000", "-1", "1e9"],
    ids=[
        "superscript",
        "trailing superscript",
        "arabic-indic",
        "5000 digits",
        "13 digits",
        "plus",
        "minus",
        "exponent",
    ],
)
def test_timestamps_that_are_not_plain_ascii_seconds_are_bad_signatures(timestamp: str) -> None:
    header = f"t={timestamp},v1={sign(BODY, SECRET, NOW).split('v1=')[1]}"
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, header, SECRET, now=NOW)
