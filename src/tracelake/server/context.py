"""What every route needs, built once per app: settings, store, writer, limits, caches."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tracelake.errors import NotFound
from tracelake.settings import Settings
from tracelake.store.base import Store


@dataclass
class ExperimentCache:
    """Active experiment ids and name→id, so ingest does not hit the database per request.

    Entries expire after ``ttl`` seconds; experiment routes invalidate on change."""

    ttl: float = 5.0
    _ids: dict[str, float] = field(default_factory=dict)
    _names: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invalidate(self) -> None:
        with self._lock:
            self._ids.clear()
            self._names.clear()

    def check_active(self, store: Store, experiment_id: str) -> None:
        now = time.monotonic()
        if self._ids.get(experiment_id, 0.0) > now:
            return
        experiment = store.get_experiment(experiment_id)
        if experiment.lifecycle_stage != "active":
            raise NotFound(f"experiment {experiment_id} is deleted; restore it before logging traces to it")
        with self._lock:
            self._ids[experiment_id] = now + self.ttl

    def resolve_name(self, store: Store, name: str, create: bool = True) -> str:
        """Experiment id for ``name``, creating the experiment when it does not exist."""
        now = time.monotonic()
        hit = self._names.get(name)
        if hit and hit[1] > now:
            return hit[0]
        experiment = store.get_experiment_by_name(name)
        if experiment is None:
            if not create:
                raise NotFound(f"no experiment named {name!r}")
            from tracelake.errors import AlreadyExists

            try:
                experiment_id = store.create_experiment(name)
            except AlreadyExists:  # created concurrently by another request
                found = store.get_experiment_by_name(name)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        else:
            experiment_id = experiment.experiment_id
        with self._lock:
            self._names[name] = (experiment_id, now + self.ttl)
        return experiment_id


@dataclass
class MaskingCache:
    """Masking rules per experiment, reloaded after ``ttl`` seconds or on change."""

    ttl: float = 5.0
    _rules: dict[str, tuple[list[dict], float]] = field(default_factory=dict)

    def invalidate(self) -> None:
        self._rules.clear()

    def rules(self, store: Store, experiment_id: str) -> list[dict]:
        now = time.monotonic()
        hit = self._rules.get(experiment_id)
        if hit and hit[1] > now:
            return hit[0]
        rules = store.list_masking_rules(experiment_id)
        self._rules[experiment_id] = (rules, now + self.ttl)
        return rules


@dataclass
class AppContext:
    settings: Settings
    store: Store
    writer: object  # GroupCommitWriter (kept loose to avoid importing the SQL layer here)
    limiter: object  # IngestLimiter
    experiments: ExperimentCache = field(default_factory=ExperimentCache)
    masking: MaskingCache = field(default_factory=MaskingCache)
