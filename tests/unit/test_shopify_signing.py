"""Shopify's webhook signature and trigger times, against pinned values.

Shopify publishes no test vector for ``X-Shopify-Hmac-Sha256``, so one was computed once
with an independent implementation (OpenSSL) and pinned here; when OpenSSL is on the
machine the test also recomputes it live.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess

import pytest

from connectors.shopify import api
from connectors.shopify.signing import (
    format_triggered_at,
    parse_timestamp,
    request_headers,
    webhook_signature,
    webhook_signature_valid,
)

# printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
SECRET = "shpss_stockcast_vector_secret"
BODY = b'{"id":820982911946154508,"financial_status":"paid"}'
BODY_SIGNATURE = "fokXRKT7Ym5aCh/p1LBy9HVs2cDsKkogR3E745JV6vk="
EMPTY_SIGNATURE = "iynmSBPNyEHH/FBwXSpezoF9x8wuMGneYdti+zM8A6w="


def test_the_pinned_vector() -> None:
    assert webhook_signature(SECRET, BODY) == BODY_SIGNATURE


def test_the_pinned_vector_of_an_empty_body() -> None:
    assert webhook_signature(SECRET, b"") == EMPTY_SIGNATURE


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_agrees() -> None:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET, "-binary"],
        input=BODY,
        capture_output=True,
        check=True,
    ).stdout

    assert base64.b64encode(digest).decode() == webhook_signature(SECRET, BODY)


def test_the_recipe_spelled_out() -> None:
    """base64 of the binary digest, not of its hex."""
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()

    assert webhook_signature(SECRET, BODY) == base64.b64encode(digest).decode()
    assert webhook_signature(SECRET, BODY) != base64.b64encode(digest.hex().encode()).decode()


def test_a_signature_round_trips() -> None:
    signature = webhook_signature("another-secret", b'{"line_items":[]}')

    assert webhook_signature_valid("another-secret", b'{"line_items":[]}', signature)


def test_surrounding_whitespace_is_forgiven() -> None:
    assert webhook_signature_valid(SECRET, BODY, f"  {BODY_SIGNATURE}\n")


@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        pytest.param(SECRET, BODY + b" ", BODY_SIGNATURE, id="body changed by one byte"),
        pytest.param("wrong-secret", BODY, BODY_SIGNATURE, id="another secret"),
        pytest.param(SECRET, BODY, BODY_SIGNATURE.lower(), id="base64 is case sensitive"),
        pytest.param(SECRET, BODY, "", id="empty"),
        pytest.param(SECRET, BODY, hashlib.sha256(BODY).hexdigest(), id="plain hash, hex"),
        pytest.param(SECRET, BODY, "fokXRKT7Ym5aCh/p1LBy9HVs2cDsKkogR3E745JV6vk", id="padding"),
        pytest.param(SECRET, BODY, "ünïcödé", id="not ascii"),
    ],
)
def test_a_wrong_signature_is_refused(secret: str, body: bytes, signature: str) -> None:
    assert not webhook_signature_valid(secret, body, signature)


def test_the_api_is_authenticated_by_the_token_header_alone() -> None:
    assert request_headers("shpat_x") == {
        api.ACCESS_TOKEN_HEADER: "shpat_x",
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2023-03-29T18:00:27.877041743Z", 1680112827.877041),
        ("2023-03-29T18:00:27Z", 1680112827.0),
        ("2023-03-29T13:00:27-05:00", 1680112827.0),
        ("2023-03-29T18:00:27", 1680112827.0),
        ("2023-03-29T18:00:27.5+00:00", 1680112827.5),
    ],
)
def test_trigger_times_are_read_as_shopify_writes_them(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("text", ["", "yesterday", "1680112827", "-2023-03-29T18:00:27Z"])
def test_unreadable_trigger_times_raise(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_timestamp(text)


def test_trigger_times_are_written_with_nanoseconds_and_a_z() -> None:
    assert format_triggered_at(1680112827.877041) == "2023-03-29T18:00:27.877041000Z"
    assert format_triggered_at(1680112827.0) == "2023-03-29T18:00:27.000000000Z"


def test_a_written_trigger_time_reads_back() -> None:
    assert parse_timestamp(format_triggered_at(1_700_000_123.25)) == 1_700_000_123.25
