"""Span exporters: tracelake server (OTLP/JSON), OTLP/HTTP protobuf, JSONL file, in-memory.

Import them from their modules (or from ``tracelake``); this package imports nothing eagerly so
that ``import tracelake`` does not load ``http.client``.
"""
