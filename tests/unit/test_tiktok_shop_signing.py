"""TikTok Shop's request and webhook signatures, against the published example vectors."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from connectors.tiktok_shop.signing import (
    request_signature_valid,
    sign_request,
    signed_query,
    webhook_signature,
    webhook_signature_valid,
)

# The "Sign your API request" example (Partner Center guide, SKIT SDK unit test).
APP_KEY = "68xu9ks5p4i8"
APP_SECRET = "e59af819cc"
SHOP_CIPHER = "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
TIMESTAMP = "1696909648"
PATH = "/event/202309/webhooks"
PUT_BODY = b'{"event_type":"PACKAGE_UPDATE","address":"https://partner.tiktokshop.com"}'
GET_SIGN = "ed58e1b5e59865c22a7b828c1cab65007441f43cc91a6cb2f2cdc638e0995a37"
PUT_SIGN = "701dd6deb2389fe4c469b89bd37fc56f96a6da6afeb4d01c9077a65169752fa7"

QUERY = {"app_key": APP_KEY, "timestamp": TIMESTAMP, "shop_cipher": SHOP_CIPHER}


def test_the_official_get_vector() -> None:
    assert sign_request(APP_SECRET, PATH, QUERY) == GET_SIGN


def test_the_official_put_vector_signs_the_raw_body() -> None:
    assert sign_request(APP_SECRET, PATH, QUERY, PUT_BODY) == PUT_SIGN


def test_sign_and_access_token_and_empty_values_are_left_out() -> None:
    noisy = {**QUERY, "sign": "whatever", "access_token": "tok", "page_token": ""}

    assert sign_request(APP_SECRET, PATH, noisy) == GET_SIGN


def test_parameter_order_does_not_matter() -> None:
    reversed_query = dict(reversed(list(QUERY.items())))

    assert sign_request(APP_SECRET, PATH, reversed_query, PUT_BODY) == PUT_SIGN


def test_the_signature_covers_path_params_and_body() -> None:
    assert sign_request(APP_SECRET, "/event/202309/webhook", QUERY) != GET_SIGN
    assert sign_request(APP_SECRET, PATH, {**QUERY, "timestamp": "1696909649"}) != GET_SIGN
    assert sign_request(APP_SECRET, PATH, QUERY, PUT_BODY + b" ") != PUT_SIGN


def test_the_recipe_spelled_out() -> None:
    """The derivation by hand: secret + path + sorted name/value pairs + body + secret."""
    base = (
        APP_SECRET
        + PATH
        + "app_key"
        + APP_KEY
        + "shop_cipher"
        + SHOP_CIPHER
        + "timestamp"
        + TIMESTAMP
        + PUT_BODY.decode()
        + APP_SECRET
    )
    expected = hmac.new(APP_SECRET.encode(), base.encode(), hashlib.sha256).hexdigest()

    assert expected == PUT_SIGN


def test_signed_query_carries_every_parameter_and_the_matching_sign() -> None:
    query = signed_query(
        app_key=APP_KEY,
        app_secret=APP_SECRET,
        path=PATH,
        timestamp=int(TIMESTAMP),
        body=PUT_BODY,
        shop_cipher=SHOP_CIPHER,
    )

    assert query == {**QUERY, "sign": PUT_SIGN}
    assert request_signature_valid(APP_SECRET, PATH, query, PUT_BODY, query["sign"])
    assert not request_signature_valid(APP_SECRET, PATH, query, b"{}", query["sign"])
    assert not request_signature_valid("other-secret", PATH, query, PUT_BODY, query["sign"])


# --- webhooks -----------------------------------------------------------------------------

BODY = b'{"type":1,"tts_notification_id":"7327","shop_id":"7494","timestamp":1696909648}'
GENUINE = webhook_signature(APP_KEY, APP_SECRET, BODY)


def test_a_webhook_signature_is_hmac_of_app_key_and_body() -> None:
    expected = hmac.new(APP_SECRET.encode(), APP_KEY.encode() + BODY, hashlib.sha256).hexdigest()

    assert webhook_signature(APP_KEY, APP_SECRET, BODY) == expected


def test_a_webhook_signature_round_trips() -> None:
    signature = webhook_signature(APP_KEY, APP_SECRET, BODY)

    assert webhook_signature_valid(APP_KEY, APP_SECRET, BODY, signature)
    assert webhook_signature_valid(APP_KEY, APP_SECRET, BODY, f" {signature.upper()} ")


@pytest.mark.parametrize(
    ("app_key", "app_secret", "body", "signature"),
    [
        pytest.param(APP_KEY, APP_SECRET, BODY + b" ", GENUINE, id="body changed"),
        pytest.param(APP_KEY, "other-secret", BODY, GENUINE, id="other secret"),
        pytest.param("other-key", APP_SECRET, BODY, GENUINE, id="other app key"),
        pytest.param(APP_KEY, APP_SECRET, BODY, GENUINE[:-1], id="truncated"),
        pytest.param(APP_KEY, APP_SECRET, BODY, "", id="empty signature"),
        pytest.param(APP_KEY, APP_SECRET, BODY, "Bearer x", id="not hex"),
        pytest.param(APP_KEY, APP_SECRET, BODY, "é" * 64, id="not ascii"),
    ],
)
def test_a_webhook_signature_is_rejected(
    app_key: str, app_secret: str, body: bytes, signature: str
) -> None:
    assert not webhook_signature_valid(app_key, app_secret, body, signature)
