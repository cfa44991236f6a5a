"""TikTok Shop's two signatures, pure: the 202309 API request ``sign`` and the webhook's.

Both are computed over the exact bytes sent: re-serialising a body before signing or
verifying changes key order and spacing, and the signature with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

UNSIGNED_PARAMS = frozenset({"sign", "access_token"})
"""Query parameters the request signature leaves out."""


def sign_request(app_secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    """The ``sign`` query parameter of an API call (202309 recipe).

    Parameters other than ``sign`` and ``access_token`` with a non-empty value, sorted by
    name, are concatenated as ``name + value`` between the URL path and the raw body, the
    whole wrapped in the app secret, then keyed with the app secret (HMAC-SHA256, lower-case
    hex). ``body`` is empty for GET and for multipart uploads.
    """
    params = "".join(
        name + value
        for name, value in sorted(query.items())
        if name not in UNSIGNED_PARAMS and value != ""
    )
    secret = app_secret.encode()
    message = secret + path.encode() + params.encode() + body + secret
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def request_signature_valid(
    app_secret: str, path: str, query: Mapping[str, str], body: bytes, sign: str
) -> bool:
    """Whether ``sign`` is the signature of this call, compared in constant time."""
    expected = sign_request(app_secret, path, query, body)
    return hmac.compare_digest(expected.encode(), sign.encode())


def signed_query(
    *,
    app_key: str,
    app_secret: str,
    path: str,
    timestamp: int,
    body: bytes = b"",
    shop_cipher: str | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every query parameter of a call, ``sign`` included."""
    query = {"app_key": app_key, "timestamp": str(timestamp), **(params or {})}
    if shop_cipher is not None:
        query["shop_cipher"] = shop_cipher
    query["sign"] = sign_request(app_secret, path, query, body)
    return query


def webhook_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """The ``Authorization`` header of a delivery: HMAC-SHA256 keyed with the app secret
    over the app key followed by the raw body, lower-case hex, no scheme prefix."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def webhook_signature_valid(app_key: str, app_secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` signs ``body``, compared in constant time. Hex case is not
    significant, surrounding whitespace neither."""
    expected = webhook_signature(app_key, app_secret, body)
    given = signature.strip().lower()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", errors="replace"))
