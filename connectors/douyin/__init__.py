"""The Douyin 抖店 (op.jinritemai.com) connector and a mock of the platform for tests."""
