"""``AuthService``: everything the server needs for auth, built once per app when auth is on.

It also answers the questions authorisation asks of the trace store (which experiment a trace
belongs to, which experiment has a name) with one small query each, so permission checks never
load a trace.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, select
from starlette.middleware import Middleware

from tracelake.auth.authenticate import Authenticator
from tracelake.auth.grants import GrantStore
from tracelake.auth.model import MANAGE, READ, Principal, PrincipalType, SecurableType, privilege_rank
from tracelake.auth.passwords import generate_password
from tracelake.auth.ratelimit import FailureLimiter
from tracelake.auth.store import AuthStore
from tracelake.errors import AlreadyExists, NotFound, PermissionDenied
from tracelake.settings import Settings
from tracelake.store.base import Store
from tracelake.store.sql.schema import experiments, traces

ADMIN_USERNAME = "admin"
# A client address may fail this many times more than one user name (people behind one proxy).
CLIENT_FAILURE_FACTOR = 10
_EXPERIMENT = SecurableType.EXPERIMENT


@dataclass
class AuthService:
    store: AuthStore
    grants: GrantStore
    authenticator: Authenticator
    session_ttl_s: float

    @property
    def engine(self) -> Engine:
        return self.store.engine

    # -- lookups in the trace store --------------------------------------------------------------

    def experiments_of_traces(self, trace_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(trace_ids))
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(traces.c.trace_id, traces.c.experiment_id)
                                .where(traces.c.trace_id.in_(ids))).all()
        return {r.trace_id: str(r.experiment_id) for r in rows}

    def experiment_ids_by_name(self, names: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(experiments.c.name, experiments.c.experiment_id)
                                .where(experiments.c.name.in_(wanted))).all()
        return {r.name: str(r.experiment_id) for r in rows}

    # -- decisions -------------------------------------------------------------------------------

    def require_experiments(self, principal: Principal, checks: Iterable[tuple[str, str]], privilege: str) -> None:
        """Check ``privilege`` on each (experiment id, message) pair: 403 when the principal can see
        the experiment but lacks the privilege; 404 with ``message`` — worded as for a missing
        object — when it cannot even read it, so existence does not leak."""
        if principal.is_admin:
            return
        needed = privilege_rank(_EXPERIMENT, privilege)
        pairs = list(checks)
        ranks = self.grants.ranks(principal, _EXPERIMENT, [e for e, _ in pairs])
        for experiment_id, missing_message in pairs:
            rank = ranks.get(experiment_id, 0)
            if rank == 0:
                raise NotFound(missing_message)
            if rank < needed:
                raise PermissionDenied(f"{privilege} permission on experiment {experiment_id} is required")

    def readable(self, principal: Principal, experiment_ids: list[str]) -> list[str]:
        """The ids, in order, of the experiments the principal may read."""
        if principal.is_admin:
            return experiment_ids
        ranks = self.grants.ranks(principal, _EXPERIMENT, experiment_ids)
        needed = privilege_rank(_EXPERIMENT, READ)
        return [e for e in experiment_ids if ranks.get(e, 0) >= needed]

    def grant_creator(self, principal: Principal, experiment_id: str) -> None:
        """The creator of an experiment gets MANAGE on it."""
        self.grants.set(PrincipalType.USER.value, principal.username, _EXPERIMENT.value, experiment_id, MANAGE)

    def middleware(self) -> list[Middleware]:
        """The ASGI middleware that enforces ``tracelake.server.permissions`` with this service."""
        from tracelake.auth.middleware import AuthMiddleware

        return [Middleware(AuthMiddleware, service=self)]


def build_auth(settings: Settings, engine: Engine) -> AuthService:
    store = AuthStore(engine)
    per_user = FailureLimiter(settings.login_max_failures, settings.login_window_s)
    per_client = FailureLimiter(settings.login_max_failures * CLIENT_FAILURE_FACTOR, settings.login_window_s)
    return AuthService(store=store, grants=GrantStore(store), authenticator=Authenticator(store, per_user, per_client),
                       session_ttl_s=settings.session_ttl_hours * 3600.0)


def ensure_admin(store: AuthStore, password: str | None) -> str | None:
    """Make sure an active admin exists. With none, user ``admin`` becomes one, with ``password``
    or a generated one; the generated password is returned (for the caller to show once)."""
    if store.count_admins() > 0:
        return None
    generated = None if password else generate_password()
    secret = password or generated
    assert secret is not None
    existing = store.get_user(ADMIN_USERNAME)
    if existing is None:
        try:
            store.create_user(ADMIN_USERNAME, secret, is_admin=True)
        except AlreadyExists:  # another server process created it at the same moment
            return None
    else:
        store.update_user(ADMIN_USERNAME, password=secret, is_admin=True, is_active=True)
    return generated


def start_auth(settings: Settings, store: Store,
               announce: Callable[[str], object] = sys.stderr.write) -> AuthService:
    """Build the service on the store's database and ensure the first admin; a generated password
    is shown once via ``announce`` (the console, never a logger)."""
    engine = getattr(store, "engine", None)
    if not isinstance(engine, Engine):
        raise TypeError("authentication needs the SQL store (SQLite or PostgreSQL)")
    service = build_auth(settings, engine)
    generated = ensure_admin(service.store, settings.admin_password or None)
    if generated:
        announce(f"\ntracelake: created user '{ADMIN_USERNAME}' with the one-time password {generated}\n"
                 "  (shown only now; change it in the UI's account page or with "
                 "'tracelake users set-password admin')\n\n")
    return service
