"""TikTok Shop (global Partner API, version 202309): the connector plugin and a mock of the
platform it talks to.

``signing`` and ``mapping`` are pure; ``client`` makes signed calls; ``connector`` is the
``tiktok_shop`` entry point; ``mock`` (with ``mock_gate``, ``mock_endpoints``,
``mock_state`` and ``mock_webhooks``) plays the platform for tests and demos. Nothing here
imports ``sync_worker``.
"""
