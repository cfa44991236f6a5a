"""Douyin's request ``sign`` and push ``event-sign``: the research notes' derived vectors
(shared/research/platform-apis.md §2.2), canonical ``param_json``, and push verification."""

from __future__ import annotations

import pytest

from connectors.base import InboundRequest, ReplayRejected, SignatureInvalid
from connectors.douyin.push import verify_push
from connectors.douyin.signing import (
    canonical_param_json,
    event_sign,
    event_signature_valid,
    request_signature_valid,
    sign_base,
    sign_request,
    signed_query,
)

# The derived (not official) vector of §2.2.
APP_KEY = "1234567890123456789"
SECRET = "test_secret"
METHOD = "sku.syncStock"
TIMESTAMP = "1700000000"
PARAMS = {
    "stock_num": 10,
    "sku_id": 1700000000000000000,
    "product_id": 3500000000000000000,
    "incremental": False,
}
PARAM_JSON = (
    '{"incremental":false,"product_id":3500000000000000000,'
    '"sku_id":1700000000000000000,"stock_num":10}'
)
HMAC_SIGN = "ec1aa18484f2cb13b3467cb845ffe6dc5d22f191692521f6b2fdf02c7e00e833"
MD5_SIGN = "717e8f5d5265d504d297013df4820ab7"

# A push signed with the same app (derived here, fixed as values).
PUSH_BODY = (
    b'[{"tag":"101","msg_id":"7300000000000000001",'
    b'"data":"{\\"p_id\\":6920000000000000001,\\"pay_time\\":1700000000}"}]'
)
PUSH_MD5 = "74f254ac0319c6d35a2fc623b4b4e007"
PUSH_HMAC = "0cef9ff10f93ee5d41910edd00575f7ac1df1e8db40b09217659f8e6baa781c1"
PUSH_TIME = 1_700_000_000


def test_param_json_of_the_vector_is_canonical() -> None:
    assert canonical_param_json(PARAMS) == PARAM_JSON


def test_hmac_sha256_vector() -> None:
    assert sign_request(APP_KEY, SECRET, METHOD, PARAM_JSON, TIMESTAMP) == HMAC_SIGN
    assert sign_request(APP_KEY, SECRET, METHOD, PARAM_JSON, TIMESTAMP, "hmac-sha256") == HMAC_SIGN


def test_md5_vector() -> None:
    assert sign_request(APP_KEY, SECRET, METHOD, PARAM_JSON, TIMESTAMP, "md5") == MD5_SIGN


def test_sign_base_wraps_the_parameters_in_the_secret() -> None:
    assert sign_base(APP_KEY, SECRET, METHOD, "{}", TIMESTAMP) == (
        "test_secretapp_key1234567890123456789methodsku.syncStockparam_json{}"
        "timestamp1700000000v2test_secret"
    )


def test_unknown_sign_method_is_refused() -> None:
    with pytest.raises(ValueError, match="sign_method"):
        sign_request(APP_KEY, SECRET, METHOD, PARAM_JSON, TIMESTAMP, "sha1")


def test_canonical_param_json_sorts_every_level_and_keeps_text_raw() -> None:
    params = {
        "z": {"b": [{"d": 1, "c": 2}], "a": "<&>"},
        "name": "口红",
        "big": 3_500_000_000_000_000_001,
        "whole": 10.0,
        "sep": "\u2028",
    }
    assert canonical_param_json(params) == (
        '{"big":3500000000000000001,"name":"口红","sep":"\\u2028","whole":10,'
        '"z":{"a":"<&>","b":[{"c":2,"d":1}]}}'
    )
    assert canonical_param_json({}) == "{}"


def test_signed_query_carries_every_parameter_and_leaves_the_token_unsigned() -> None:
    query = signed_query(
        app_key=APP_KEY,
        app_secret=SECRET,
        access_token="token-1",
        method=METHOD,
        param_json=PARAM_JSON,
        timestamp=TIMESTAMP,
    )
    assert query == {
        "app_key": APP_KEY,
        "method": METHOD,
        "access_token": "token-1",
        "timestamp": TIMESTAMP,
        "v": "2",
        "sign_method": "hmac-sha256",
        "sign": HMAC_SIGN,
    }
    other = signed_query(
        app_key=APP_KEY,
        app_secret=SECRET,
        access_token="token-2",
        method=METHOD,
        param_json=PARAM_JSON,
        timestamp=TIMESTAMP,
    )
    assert other["sign"] == HMAC_SIGN


@pytest.mark.parametrize(
    ("sign", "valid"),
    [
        (HMAC_SIGN, True),
        (HMAC_SIGN.upper(), True),
        (HMAC_SIGN[:-1] + "0", False),
        ("", False),
        ("签名", False),
    ],
)
def test_request_signature_check(sign: str, valid: bool) -> None:
    args = (APP_KEY, SECRET, METHOD, PARAM_JSON, TIMESTAMP, "hmac-sha256", sign)
    assert request_signature_valid(*args) is valid


def test_request_signature_covers_the_param_json_text() -> None:
    spaced = PARAM_JSON.replace(",", ", ")
    assert not request_signature_valid(
        APP_KEY, SECRET, METHOD, spaced, TIMESTAMP, "hmac-sha256", HMAC_SIGN
    )


def test_event_sign_vectors() -> None:
    assert event_sign(APP_KEY, SECRET, PUSH_BODY) == PUSH_MD5
    assert event_sign(APP_KEY, SECRET, PUSH_BODY, "hmac-sha256") == PUSH_HMAC


def test_event_signature_round_trip_and_rejections() -> None:
    signature = event_sign(APP_KEY, SECRET, PUSH_BODY)
    assert event_signature_valid(APP_KEY, SECRET, PUSH_BODY, signature)
    assert event_signature_valid(APP_KEY, SECRET, PUSH_BODY, signature.upper())
    assert not event_signature_valid(APP_KEY, SECRET, PUSH_BODY + b" ", signature)
    assert not event_signature_valid(APP_KEY, "other_secret", PUSH_BODY, signature)
    assert not event_signature_valid("9" + APP_KEY[1:], SECRET, PUSH_BODY, signature)


def push(body: bytes = PUSH_BODY, headers: dict[str, str] | None = None) -> InboundRequest:
    base = {"app-id": APP_KEY, "event-sign": PUSH_MD5, "content-type": "application/json"}
    return InboundRequest(headers={**base, **(headers or {})}, body=body)


def test_a_signed_fresh_push_verifies() -> None:
    verify_push(APP_KEY, SECRET, push(), PUSH_TIME)
    verify_push(APP_KEY, SECRET, push(), PUSH_TIME + 72 * 3600)
    verify_push(APP_KEY, SECRET, push(headers={"event-sign": PUSH_MD5.upper()}), PUSH_TIME)


def test_hmac_signed_push_verifies_when_announced() -> None:
    announced = push(headers={"event-sign": PUSH_HMAC, "sign-method": "hmac-sha256"})
    verify_push(APP_KEY, SECRET, announced, PUSH_TIME)
    with pytest.raises(SignatureInvalid):
        verify_push(APP_KEY, SECRET, push(headers={"event-sign": PUSH_HMAC}), PUSH_TIME)


@pytest.mark.parametrize(
    "request_",
    [
        push(body=PUSH_BODY.replace(b"6920000000000000001", b"6920000000000000002")),
        push(headers={"event-sign": "0" * 32}),
        push(headers={"app-id": "9876543210987654321"}),
        push(headers={"sign-method": "sha1"}),
        InboundRequest(headers={"app-id": APP_KEY}, body=PUSH_BODY),
    ],
    ids=["forged-body", "wrong-sign", "other-app", "unknown-method", "no-sign"],
)
def test_pushes_not_provably_ours_are_refused(request_: InboundRequest) -> None:
    with pytest.raises(SignatureInvalid) as raised:
        verify_push(APP_KEY, SECRET, request_, PUSH_TIME)
    assert SECRET not in str(raised.value)


def test_a_push_older_than_72_hours_is_a_replay() -> None:
    """The platform's redelivery horizon is unpublished; 72 hours takes late redeliveries."""
    with pytest.raises(ReplayRejected):
        verify_push(APP_KEY, SECRET, push(), PUSH_TIME + 72 * 3600 + 1)


def test_the_push_window_can_be_narrowed() -> None:
    verify_push(APP_KEY, SECRET, push(), PUSH_TIME + 600, window_s=600)
    with pytest.raises(ReplayRejected):
        verify_push(APP_KEY, SECRET, push(), PUSH_TIME + 601, window_s=600)


def test_a_push_without_any_message_time_is_refused() -> None:
    body = b'[{"tag":"110","msg_id":"1","data":"{\\"p_id\\":6920000000000000001}"}]'
    request = push(body=body, headers={"event-sign": event_sign(APP_KEY, SECRET, body)})
    with pytest.raises(ReplayRejected):
        verify_push(APP_KEY, SECRET, request, PUSH_TIME)


def test_a_signed_push_with_an_unreadable_body_is_left_to_decode() -> None:
    body = b"not json"
    verify_push(
        APP_KEY, SECRET, push(body, headers={"event-sign": event_sign(APP_KEY, SECRET, body)}), 0
    )
