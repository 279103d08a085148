"""Data: the per-client, per-round shard layout, its reader, and synthetic worlds for tests."""
