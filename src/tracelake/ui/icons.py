"""The UI's icons: one inline SVG sprite (``<symbol id="i-NAME">``), 16x16 stroked paths.

Pages include the sprite once; templates and scripts draw an icon with ``<use href="#i-NAME">``.
Span types map to ``type-NAME`` symbols; an unknown type falls back to ``type-UNKNOWN``.
"""
from __future__ import annotations

from markupsafe import Markup

SPAN_TYPE_ICONS: dict[str, str] = {
    "LLM": "M8 1.5l1.6 4.9 4.9 1.6-4.9 1.6L8 14.5l-1.6-4.9L1.5 8l4.9-1.6z",
    "CHAT_MODEL": "M2.5 3.5h11v7h-6l-3 2.5v-2.5h-2zM5 6.5h6M5 8.5h4",
    "RETRIEVER": "M10.5 6.5a4 4 0 1 1-8 0 4 4 0 0 1 8 0zM9.5 9.5L14 14",
    "TOOL": "M13.5 4.5a3.5 3.5 0 0 1-4.6 3.3L4 12.7a1.4 1.4 0 0 1-2-2l4.9-4.9A3.5 3.5 0 0 1 11.5 1.5L9.5 3.5l.5 2 "
            "2 .5z",
    "AGENT": "M4 5h8a1.5 1.5 0 0 1 1.5 1.5v5A1.5 1.5 0 0 1 12 13H4a1.5 1.5 0 0 1-1.5-1.5v-5A1.5 1.5 0 0 1 4 5zM8 "
             "5V2.5M6 9v.5M10 9v.5",
    "CHAIN": "M6.5 9.5l3-3M7 4.5l1-1a2.8 2.8 0 0 1 4 4l-1 1M9 11.5l-1 1a2.8 2.8 0 0 1-4-4l1-1",
    "EMBEDDING": "M3.5 3.5h1v1h-1zM7.5 3.5h1v1h-1zM11.5 3.5h1v1h-1zM3.5 7.5h1v1h-1zM7.5 7.5h1v1h-1zM11.5 "
                 "7.5h1v1h-1zM3.5 11.5h1v1h-1zM7.5 11.5h1v1h-1zM11.5 11.5h1v1h-1z",
    "RERANKER": "M5 2v12M2.5 11.5L5 14l2.5-2.5M11 14V2M8.5 4.5L11 2l2.5 2.5",
    "PARSER": "M6 2.5c-1.5 0-2 .7-2 2V6c0 1-.5 2-1.5 2 1 0 1.5 1 1.5 2v1.5c0 1.3.5 2 2 2M10 2.5c1.5 0 2 .7 2 2V6c0 "
              "1 .5 2 1.5 2-1 0-1.5 1-1.5 2v1.5c0 1.3-.5 2-2 2",
    "MEMORY": "M3 4c0-1.1 2.2-2 5-2s5 .9 5 2-2.2 2-5 2-5-.9-5-2zM3 4v8c0 1.1 2.2 2 5 2s5-.9 5-2V4M3 8c0 1.1 2.2 2 5 "
              "2s5-.9 5-2",
    "GUARDRAIL": "M8 1.5l5.5 2v4c0 3.5-2.5 6-5.5 7-3-1-5.5-3.5-5.5-7v-4z",
    "EVALUATOR": "M14 8A6 6 0 1 1 2 8a6 6 0 0 1 12 0zM5.5 8l2 2 3-3.5",
    "UNKNOWN": "M13 8A5 5 0 1 1 3 8a5 5 0 0 1 10 0z",
}

UI_ICONS: dict[str, str] = {
    "chevron": "M6 4l4 4-4 4",
    "thumb-up": "M5 7v7H2.5V7zM5 7l3-5.5c1 0 1.8.8 1.6 1.8L9.2 6H13a1.3 1.3 0 0 1 1.3 1.5l-1 5.3A1.5 1.5 0 0 1 11.8 "
                "14H5",
    "thumb-down": "M11 9V2h2.5v7zM11 9l-3 5.5c-1 0-1.8-.8-1.6-1.8L6.8 10H3a1.3 1.3 0 0 1-1.3-1.5l1-5.3A1.5 1.5 0 0 1 "
                  "4.2 2H11",
    "x": "M4 4l8 8M12 4l-8 8",
    "download": "M8 2v8M4.5 6.5L8 10l3.5-3.5M2.5 13.5h11",
    "trash": "M2.5 4h11M6 4V2.5h4V4M4 4l.7 9.5h6.6L12 4",
    "plus": "M8 3v10M3 8h10",
    "pencil": "M10.5 2.5l3 3-8 8h-3v-3z",
    "pulse": "M1.5 8h3l2-5 3 10 2-5h3",
    "list": "M5.5 4h8M5.5 8h8M5.5 12h8M2.5 4h.5M2.5 8h.5M2.5 12h.5",
    "chat": "M2.5 3.5h11v7h-6l-3 2.5v-2.5h-2z",
    "alert": "M8 2l6.5 11.5h-13zM8 6.5v3M8 11.5v.5",
    "logo": "M2 12.5L6 7l3 3 5-6.5M2 3v10.5h12",
}


def sprite() -> Markup:
    """The ``<svg>`` sprite with every icon (constants only, so it is safe to mark up)."""
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="sprite" aria-hidden="true" focusable="false">']
    for name, path in SPAN_TYPE_ICONS.items():
        parts.append(f'<symbol id="i-type-{name}" viewBox="0 0 16 16"><path d="{path}"/></symbol>')
    for name, path in UI_ICONS.items():
        parts.append(f'<symbol id="i-{name}" viewBox="0 0 16 16"><path d="{path}"/></symbol>')
    parts.append("</svg>")
    return Markup("".join(parts))


def type_icon_id(span_type: str | None) -> str:
    return "i-type-" + (span_type if span_type in SPAN_TYPE_ICONS else "UNKNOWN")
