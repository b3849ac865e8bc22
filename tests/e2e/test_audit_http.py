"""Auditors over HTTP: a stream's history, its state as of a version or time, the log, verify."""

from __future__ import annotations

import secrets
import time
from datetime import datetime

import httpx

from application.settings import Settings


def test_auditors_see_history_state_and_verification(
    api_url: str, admin_headers: dict[str, str], settings: Settings, workers: None
) -> None:
    api = f"{api_url}/api/v1"
    created = httpx.post(
        f"{api}/products",
        json={
            "sku": f"A-{secrets.token_hex(4)}",
            "name": "Before",
            "price": {"amount": 100, "currency": "EUR"},
        },
        headers={**admin_headers, "X-Request-ID": "audit-trail-1"},
    ).json()
    product = created["id"]
    time.sleep(0.05)
    renamed = httpx.patch(
        f"{api}/products/{product}",
        json={"name": "After", "price": {"amount": 250, "currency": "EUR"}},
        headers=admin_headers,
    )
    assert renamed.status_code == 200
    events = httpx.get(f"{api}/audit/streams/{product}/events", headers=admin_headers).json()
    items = events["items"]
    assert [e["type"] for e in items] == [
        "Product.Created",
        "Product.DetailsChanged",
        "Product.PriceChanged",
    ]
    assert [e["version"] for e in items] == [1, 2, 3]
    assert items[0]["correlationId"] == "audit-trail-1"
    assert items[0]["actor"].startswith("user:")
    assert items[2]["data"]["price"] == {"amount": 250, "currency": "EUR"}
    assert items[0]["position"] < items[1]["position"]

    first = httpx.get(
        f"{api}/audit/streams/{product}/state", params={"version": 1}, headers=admin_headers
    ).json()
    assert first["version"] == 1
    assert first["state"]["name"] == "Before"
    between = datetime.fromisoformat(items[0]["timestamp"])
    at = httpx.get(
        f"{api}/audit/streams/{product}/state",
        params={"at": between.isoformat()},
        headers=admin_headers,
    ).json()
    assert at["version"] == 1
    latest = httpx.get(
        f"{api}/audit/streams/{product}/state", params={"version": 3}, headers=admin_headers
    ).json()
    assert latest["state"]["price"] == {"amount": 250, "currency": "EUR"}
    missing = httpx.get(
        f"{api}/audit/streams/{product}/state", params={"version": 9}, headers=admin_headers
    )
    assert missing.status_code == 404

    log = httpx.get(
        f"{api}/audit/events",
        params={"after": items[0]["position"] - 1, "type": "Product.PriceChanged", "limit": 5},
        headers=admin_headers,
    ).json()
    assert product in [e["streamId"] for e in log["items"]]
    assert all(e["type"] == "Product.PriceChanged" for e in log["items"])

    deadline = time.monotonic() + 10
    while True:
        verified = httpx.get(f"{api}/audit/verify", headers=admin_headers, timeout=60).json()
        assert verified["ok"] is True, verified
        if verified["sealedEvents"] >= verified["checkedEvents"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert verified["checkedEvents"] >= 3
    assert verified["sealedEvents"] > 0


def test_cli_verifies_and_exports_with_progress(
    settings: Settings, admin: None, tmp_path: object
) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, **settings.as_env()}
    verified = subprocess.run(
        [sys.executable, "-m", "workers", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: ")
    assert "verifying:" in verified.stderr
    target = Path(str(tmp_path)) / "log.ndjson"
    exported = subprocess.run(
        [sys.executable, "-m", "workers", "audit", "export", "--output", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines
    positions = [line["position"] for line in lines]
    assert positions == sorted(positions)
    assert {"position", "streamId", "version", "type", "actor", "data"} <= set(lines[0])
