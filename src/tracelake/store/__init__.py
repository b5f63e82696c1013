"""Trace storage: the Store interface, its SQL implementation and artifact storage."""
