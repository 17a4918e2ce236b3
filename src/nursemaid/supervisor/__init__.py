"""nursemaid.supervisor."""
