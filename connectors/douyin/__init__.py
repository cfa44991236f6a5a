"""douyin connector."""
