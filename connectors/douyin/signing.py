"""Douyin's signatures, pure: the API request ``sign`` and the push's ``event-sign``.

The request signature covers ``param_json``, the business parameters as canonical JSON
(keys sorted at every level, compact, no HTML escaping), so the text that is signed must
be the very text sent as the body: both are made once, here. The push signature covers
the raw body bytes as received; re-serialising them first would change them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from connectors.douyin.api import (
    API_VERSION,
    SIGN_METHOD_HMAC_SHA256,
    SIGN_METHOD_MD5,
)


def canonical_param_json(params: Mapping[str, Any]) -> str:
    """The ``param_json`` text of ``params``, byte for byte what the official SDK sends.

    Integers stay exact however large (product and SKU ids exceed 2**53), an integral
    float is written without ``.0``, non-ASCII text is written as UTF-8, and U+2028/U+2029
    are escaped as Go's encoder does. ``{}`` when there are no parameters.
    """
    text = json.dumps(
        _integral_floats_as_ints(params),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def sign_base(app_key: str, app_secret: str, method: str, param_json: str, timestamp: str) -> str:
    """The text both sign methods digest; ``access_token`` and ``sign_method`` are not in it."""
    return (
        f"{app_secret}app_key{app_key}method{method}param_json{param_json}"
        f"timestamp{timestamp}v{API_VERSION}{app_secret}"
    )


def sign_request(
    app_key: str,
    app_secret: str,
    method: str,
    param_json: str,
    timestamp: str,
    sign_method: str = SIGN_METHOD_HMAC_SHA256,
) -> str:
    """The ``sign`` query parameter: lower-case hex HMAC-SHA256 keyed with the app secret
    (recommended), or MD5 of the same text (legacy)."""
    base = sign_base(app_key, app_secret, method, param_json, timestamp).encode()
    if sign_method == SIGN_METHOD_HMAC_SHA256:
        return hmac.new(app_secret.encode(), base, hashlib.sha256).hexdigest()
    if sign_method == SIGN_METHOD_MD5:
        return hashlib.md5(base, usedforsecurity=False).hexdigest()
    raise ValueError(f"unknown sign_method {sign_method!r}")


def request_signature_valid(
    app_key: str,
    app_secret: str,
    method: str,
    param_json: str,
    timestamp: str,
    sign_method: str,
    sign: str,
) -> bool:
    """Whether ``sign`` signs this call; constant time, case-insensitive hex."""
    expected = sign_request(app_key, app_secret, method, param_json, timestamp, sign_method)
    return _same_hex(expected, sign)


def signed_query(
    *,
    app_key: str,
    app_secret: str,
    access_token: str,
    method: str,
    param_json: str,
    timestamp: str,
    sign_method: str = SIGN_METHOD_HMAC_SHA256,
) -> dict[str, str]:
    """Every query parameter of a call, ``sign`` included."""
    return {
        "app_key": app_key,
        "method": method,
        "access_token": access_token,
        "timestamp": timestamp,
        "v": API_VERSION,
        "sign_method": sign_method,
        "sign": sign_request(app_key, app_secret, method, param_json, timestamp, sign_method),
    }


def event_sign(
    app_key: str, app_secret: str, body: bytes, sign_method: str = SIGN_METHOD_MD5
) -> str:
    """The push's ``event-sign``: lower-case hex MD5 of app_key + raw body + app_secret.

    ``hmac-sha256`` (announced by a ``sign-method`` header) keys the same text with the
    app secret; that variant is [U] and only used when the header asks for it.
    """
    text = app_key.encode() + body + app_secret.encode()
    if sign_method == SIGN_METHOD_MD5:
        return hashlib.md5(text, usedforsecurity=False).hexdigest()
    if sign_method == SIGN_METHOD_HMAC_SHA256:
        return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown sign_method {sign_method!r}")


def event_signature_valid(
    app_key: str, app_secret: str, body: bytes, signature: str, sign_method: str = SIGN_METHOD_MD5
) -> bool:
    """Whether ``signature`` is the push's ``event-sign``; constant time, any hex case."""
    return _same_hex(event_sign(app_key, app_secret, body, sign_method), signature)


def _same_hex(expected: str, given: str) -> bool:
    # compare_digest needs ASCII; a header with anything else is simply not a match.
    try:
        given_bytes = given.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given_bytes)
