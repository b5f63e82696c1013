"""Server-side masking of span content before it is stored.

A rule is a dict ``{"kind": "regex" | "attribute_key", "pattern": str, "replacement": str}``:

- ``regex``: every match inside inputs, outputs, string attribute values (nested lists and
  maps included), event attribute values and the status message is replaced. Inputs and
  outputs are JSON text: they are decoded, their string values masked, and re-encoded, so
  the result is always valid JSON whatever the replacement holds.
- ``attribute_key``: an attribute (span or event) whose key equals the pattern, or fully
  matches it as a regex, has its whole value replaced. A rule matching a key that feeds
  inputs/outputs (``mlflow.spanInputs``, ``input.value`` ...) masks the inputs/outputs.

Replacements are literal text (no ``\\1`` group references). Compiled rule sets are cached.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from tracelake.entities import Span
from tracelake.errors import InvalidRequest
from tracelake.ingest.conventions import INPUT_KEYS, OUTPUT_KEYS
from tracelake.store.base import SpanBatch

DEFAULT_REPLACEMENT = "[MASKED]"
_KEY_CACHE_LIMIT = 10_000

_RuleKey = tuple[tuple[str, str, str], ...]


@dataclass(slots=True)
class MaskingRules:
    """A compiled rule set (see ``compile_rules``)."""

    regexes: tuple[tuple[re.Pattern[str], str], ...]
    key_rules: tuple[tuple[str, re.Pattern[str] | None, str], ...]
    inputs_replacement: str | None  # set when a key rule covers an inputs attribute
    outputs_replacement: str | None
    _key_cache: dict[str, str | None] = field(default_factory=dict)

    def key_replacement(self, key: str) -> str | None:
        """The replacement for an attribute named ``key``, or None when no key rule matches."""
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        found = None
        for name, regex, replacement in self.key_rules:
            if key == name or (regex is not None and regex.fullmatch(key)):
                found = replacement
                break
        if len(self._key_cache) < _KEY_CACHE_LIMIT:
            self._key_cache[key] = found
        return found


def compile_rules(rules: Sequence[Mapping[str, Any]]) -> MaskingRules:
    """Validate and compile ``rules`` (cached by content); bad rules raise ``InvalidRequest``."""
    key: list[tuple[str, str, str]] = []
    for i, rule in enumerate(rules):
        kind, pattern = rule.get("kind"), rule.get("pattern")
        replacement = rule.get("replacement")
        replacement = DEFAULT_REPLACEMENT if replacement is None else replacement
        if kind not in ("regex", "attribute_key"):
            raise InvalidRequest(f"masking rule {i}: kind must be 'regex' or 'attribute_key', got {kind!r}")
        if not isinstance(pattern, str) or not pattern:
            raise InvalidRequest(f"masking rule {i}: pattern must be a non-empty string")
        if not isinstance(replacement, str):
            raise InvalidRequest(f"masking rule {i}: replacement must be a string")
        key.append((kind, pattern, replacement))
    return _compile(tuple(key))


@lru_cache(maxsize=256)
def _compile(rules: _RuleKey) -> MaskingRules:
    regexes: list[tuple[re.Pattern[str], str]] = []
    key_rules: list[tuple[str, re.Pattern[str] | None, str]] = []
    for i, (kind, pattern, replacement) in enumerate(rules):
        try:
            regex: re.Pattern[str] | None = re.compile(pattern)
        except re.error as exc:
            if kind == "regex":
                raise InvalidRequest(f"masking rule {i}: invalid regular expression {pattern!r}: {exc}") from None
            regex = None  # an attribute name that is not a valid regex is matched exactly
        if kind == "regex":
            assert regex is not None
            if regex.fullmatch(""):
                raise InvalidRequest(f"masking rule {i}: pattern {pattern!r} matches the empty string")
            # Escape backslashes so the replacement is inserted literally.
            regexes.append((regex, replacement.replace("\\", "\\\\")))
        else:
            key_rules.append((pattern, regex, replacement))
    compiled = MaskingRules(tuple(regexes), tuple(key_rules), None, None)
    compiled.inputs_replacement = next(
        (r for r in map(compiled.key_replacement, INPUT_KEYS) if r is not None), None)
    compiled.outputs_replacement = next(
        (r for r in map(compiled.key_replacement, OUTPUT_KEYS) if r is not None), None)
    return compiled


def apply_masking(batch: SpanBatch, rules: Sequence[Mapping[str, Any]] | MaskingRules) -> SpanBatch:
    """Mask ``batch``'s spans in place and return the same batch."""
    mask_spans(batch.spans, rules)
    return batch


def mask_spans(spans: list[Span], rules: Sequence[Mapping[str, Any]] | MaskingRules) -> int:
    """Mask ``spans`` in place; return how many values were changed."""
    compiled = rules if isinstance(rules, MaskingRules) else compile_rules(rules)
    if not compiled.regexes and not compiled.key_rules:
        return 0
    masker = _Masker(compiled)
    for span in spans:
        masker.span(span)
    return masker.changed


class _Masker:
    __slots__ = ("rules", "regexes", "changed")

    def __init__(self, rules: MaskingRules) -> None:
        self.rules = rules
        self.regexes = rules.regexes
        self.changed = 0

    def span(self, span: Span) -> None:
        rules = self.rules
        if rules.inputs_replacement is not None and span.inputs is not None:
            span.inputs = orjson.dumps(rules.inputs_replacement).decode()
            self.changed += 1
        if rules.outputs_replacement is not None and span.outputs is not None:
            span.outputs = orjson.dumps(rules.outputs_replacement).decode()
            self.changed += 1
        if span.attributes:
            self.attributes(span.attributes)
        for event in span.events:
            if event.attributes:
                self.attributes(event.attributes)
        if not self.regexes:
            return
        if span.inputs is not None:
            span.inputs = self.json_text(span.inputs)
        if span.outputs is not None:
            span.outputs = self.json_text(span.outputs)
        if span.status_message:
            span.status_message = self.text(span.status_message)

    def attributes(self, attrs: dict[str, Any]) -> None:
        if self.rules.key_rules:
            for key in attrs:
                replacement = self.rules.key_replacement(key)
                if replacement is not None:
                    attrs[key] = replacement
                    self.changed += 1
        if self.regexes:
            for key, value in attrs.items():
                attrs[key] = self.value(value)

    def text(self, text: str) -> str:
        for regex, replacement in self.regexes:
            if regex.search(text) is not None:
                text = regex.sub(replacement, text)
                self.changed += 1
        return text

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def json_text(self, text: str) -> str:
        # Without backslashes every JSON string's decoded text appears verbatim in ``text``,
        # so no raw match means no match anywhere: skip decoding.
        if "\\" not in text and not any(regex.search(text) for regex, _ in self.regexes):
            return text
        before = self.changed
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            try:  # the stdlib also reads integers beyond 64 bits and NaN
                document = json.loads(text)
            except ValueError:
                # Not JSON after all: mask it as text and store it as a JSON string.
                masked_text = self.text(text)
                return orjson.dumps(masked_text).decode() if self.changed != before else text
            masked = self.value(document)
            return json.dumps(masked, ensure_ascii=False) if self.changed != before else text
        masked = self.value(document)
        return orjson.dumps(masked).decode() if self.changed != before else text
