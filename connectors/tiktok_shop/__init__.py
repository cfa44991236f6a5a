"""tiktok_shop connector."""
