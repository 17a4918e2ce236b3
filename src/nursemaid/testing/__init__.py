"""nursemaid.testing."""
