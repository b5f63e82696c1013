"""Experiment: the unit that owns traces, permissions and an artifact location."""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


@dataclass(slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str = ""
    lifecycle_stage: str = "active"  # "active" | "deleted"
    creation_time: int = 0  # ms since epoch
    last_update_time: int = 0  # ms since epoch
    tags: dict[str, str] = field(default_factory=dict)
