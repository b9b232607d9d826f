"""uids of GitHub logins, assigned once and remembered in the hub's own database.

Why: a GitHub login has no LDAP entry to hold its uidNumber, and a uid decides who owns a home
directory on the data volume, so it must never change and never be shared. At a login's first
spawn the registry stores the first free candidate of the name's probe sequence
(jhc_ids.probe_uid: the first candidate is the name-derived id earlier versions used, so
existing homes keep their owner). The table's primary key (name) and unique uid let the
database refuse a second owner even under concurrent spawns. Rows are never deleted: a removed
user's uid stays reserved. Explicit uids from config (JHC_UIDS_JSON) win and are never handed
to anybody else.

Only SQLAlchemy (a JupyterHub dependency) is used; the hub's db_url selects the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import sqlalchemy as sa
from jhc_ids import probe_uid
from sqlalchemy.exc import IntegrityError

MAX_PROBES = 64
TABLE = "jhc_uid_registry"

_metadata = sa.MetaData()
_uids = sa.Table(
    TABLE, _metadata,
    sa.Column("name", sa.Unicode(255), primary_key=True),
    sa.Column("uid", sa.Integer, nullable=False, unique=True),
)


class UidRegistryError(RuntimeError):
    """No uid can be given to a login without sharing one (the message says what to do)."""


class UidRegistry:
    def __init__(self, db_url: str, explicit: Mapping[str, int]) -> None:
        self.engine = sa.create_engine(db_url)
        try:
            _metadata.create_all(self.engine)  # checks first, then CREATE TABLE
        except sa.exc.DBAPIError:
            # Two hubs creating it at once: PostgreSQL refuses the second (pg_type unique
            # violation, seen in tests/integration). The table then exists; anything else raises.
            if not sa.inspect(self.engine).has_table(TABLE):
                raise
        self.explicit = dict(explicit)
        self._explicit_numbers = {uid: name for name, uid in self.explicit.items()}

    def uid_for(self, name: str) -> int:
        """The uid of `name`: explicit, else the registered one, else a newly registered one."""
        with self.engine.connect() as conn:
            if name in self.explicit:
                uid = self.explicit[name]
                holder = conn.execute(sa.select(_uids.c.name).where(_uids.c.uid == uid)).scalar()
                if holder not in (None, name):
                    raise UidRegistryError(
                        f"uid {uid} declared for {name!r} already belongs to {holder!r}; "
                        f"remove {name!r}'s explicit uid to have a free one assigned")
                return uid
            known = conn.execute(sa.select(_uids.c.uid).where(_uids.c.name == name)).scalar()
        if known is not None:
            return int(known)
        for attempt in range(MAX_PROBES):
            candidate = probe_uid(name, attempt)
            if candidate in self._explicit_numbers:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(_uids).values(name=name, uid=candidate))
                return candidate
            except IntegrityError:
                # The uid is someone else's, or a concurrent spawn registered this name first.
                with self.engine.connect() as conn:
                    known = conn.execute(
                        sa.select(_uids.c.uid).where(_uids.c.name == name)).scalar()
                if known is not None:
                    return int(known)
        raise UidRegistryError(f"no free uid for {name!r} in {MAX_PROBES} probes; "
                               "give it an explicit uid (JHC_UIDS_JSON)")


@cache
def _registry(db_url: str, explicit: tuple[tuple[str, int], ...]) -> UidRegistry:
    return UidRegistry(db_url, dict(explicit))


def registry(db_url: str, explicit: Mapping[str, int]) -> UidRegistry:
    """One registry (one engine) per database and explicit map for the hub's lifetime."""
    return _registry(db_url, tuple(sorted(explicit.items())))
