"""OTLP/HTTP trace ingest: decode, validate, normalise conventions, mask.

Pure CPU work with no I/O: the server calls ``decode_request`` then ``apply_masking`` per
experiment batch, and hands the batches to the store.
"""
from tracelake.ingest.conventions import TraceFacts, normalise_span
from tracelake.ingest.masking import MaskingRules, apply_masking, compile_rules
from tracelake.ingest.otlp import ResourceSpans, decode_otlp
from tracelake.ingest.pipeline import DecodedRequest, ExperimentBatch, decode_request

__all__ = [
    "DecodedRequest",
    "ExperimentBatch",
    "MaskingRules",
    "ResourceSpans",
    "TraceFacts",
    "apply_masking",
    "compile_rules",
    "decode_otlp",
    "decode_request",
    "normalise_span",
]
