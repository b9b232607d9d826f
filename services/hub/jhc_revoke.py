"""The revocation check: a hub user whose access was taken away loses every session and token
and their server, within JHC_REVOKE_EVERY seconds. The hub runs it as a managed service.

Why it is needed (JupyterHub 6.1.1, jupyterhub/handlers/base.py ``refresh_auth``): a failed
``Authenticator.refresh_user`` only forces a new login on cookie requests; token requests keep
working unless ``auth_refresh_strict``, and a running server is never stopped. The login cookie
lives 14 days and API tokens never expire. So an account removed (or blocked, or whose password
was reset) in stack config must be acted on: this check deletes the user from the hub through
its REST API (``DELETE /hub/api/users/<name>``, jupyterhub/apihandlers/users.py: stops the
server, then drops the user row, which takes their API tokens and the ``cookie_id`` every login
cookie names with it). The home directory is a bind mount and is not touched (the Spawner's
``delete_forever`` is a no-op for DockerSpawner). A later login creates the hub user again, with
the uidNumber LDAP kept for the account, so the same home.

What revokes (:func:`revocation_reason`): the name is in JHC_BLOCKED_USERS; the account is
gone from the directory or carries the reconcile's ``jhc:disabled`` mark (removed from stack
config); the entry's ``entryCSN`` differs from the one recorded at login (slapd rewrites it on
every modification: the reconcile's password reset, or any other change of the account, ends
the sessions made before it).

The directory is read with the read-only account (cn=readonly: reads everything but
userPassword, services/ldap/ldif/config.ldif.tmpl); the hub never holds a write credential.
If the directory cannot be read, nobody is deleted and the next round tries again.

Run as ``python3 /etc/jupyterhub/jhc_revoke.py`` with JUPYTERHUB_API_URL/TOKEN (JupyterHub sets
them for a managed service) and the settings document's path.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from jhc_settings import HubSettings, LdapSettings, load_document, read_secret_file, read_settings

#: What the service's token may do: list users and read their auth_state (the entryCSN recorded
#: at login), delete users (which stops their server first).
REVOKE_SCOPES = ("list:users", "read:users", "admin:auth_state", "admin:users")
#: The reconcile's mark on an account no longer declared (services/ldap/reconcile.py DISABLED).
DISABLED_MARK = "jhc:disabled"
#: Users asked for per request (JupyterHub's default api_page_max_limit).
PAGE = 200
#: The auth_state key holding the entryCSN read at login (jhc_ldap).
CSN_KEY = "entry_csn"

log = logging.getLogger("jhc-revoke")


def revocation_reason(name: str, entry: Mapping[str, Any] | None, recorded_csn: str | None,
                      blocked: Iterable[str]) -> str | None:
    """Why ``name`` must lose access, or None. ``entry``: the account as read now
    ({"description": [...], "entryCSN": "..."}), None when it is not in the directory."""
    if name in set(blocked):
        return "blocked"
    if entry is None:
        return "no longer in the directory"
    if any(str(d).lower() == DISABLED_MARK for d in entry.get("description") or []):
        return "disabled in the directory"
    current = entry.get("entryCSN")
    if recorded_csn and current != recorded_csn:
        return "account changed since login (e.g. password reset)"
    return None


def read_accounts(ldap: LdapSettings) -> dict[str, dict[str, Any]]:
    """{uid: {"description": [...], "entryCSN": str}} of every posixAccount below the user base,
    read with the read-only account (static filter: no user input reaches it)."""
    import ssl

    import ldap3

    assert ldap.readonly_password_file is not None
    password = read_secret_file(ldap.readonly_password_file, "JHC_LDAP_READONLY_PASSWORD_FILE")
    tls = None
    if ldap.tls_strategy != "insecure":
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ldap.ca_file)
    server = ldap3.Server(ldap.server, port=ldap.port, use_ssl=ldap.tls_strategy == "on_connect",
                          tls=tls, get_info=ldap3.NONE, connect_timeout=10)
    conn = ldap3.Connection(server, user=f"cn=readonly,{ldap.base_dn}", password=password,
                            raise_exceptions=True, receive_timeout=30)
    try:
        if ldap.tls_strategy == "before_bind":
            conn.open()
            conn.start_tls()
        conn.bind()
        conn.search(ldap.user_base, "(objectClass=posixAccount)", search_scope=ldap3.SUBTREE,
                    attributes=["uid", "description", "entryCSN"])
        accounts: dict[str, dict[str, Any]] = {}
        for item in conn.response or []:
            if item.get("type") != "searchResEntry":
                continue
            attrs = item["attributes"]
            uids = attrs.get("uid") or []
            csn = attrs.get("entryCSN")
            for uid in uids if isinstance(uids, list) else [uids]:
                accounts[str(uid)] = {
                    "description": [str(d) for d in attrs.get("description") or []],
                    "entryCSN": str(csn[0] if isinstance(csn, list) and csn else csn or ""),
                }
        return accounts
    finally:
        conn.unbind()


class HubApi:
    """The hub's REST API with the service's token (stdlib HTTP: nothing else to install)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (hub URL)
            body = response.read()
        return json.loads(body) if body else None

    def user_names(self) -> list[str]:
        """Every hub user: GET /users returns at most api_page_max_limit (200) per request
        (jupyterhub/apihandlers/base.py get_api_pagination), so page with offset."""
        names: list[str] = []
        while True:
            page = self.call("GET", f"/users?offset={len(names)}&limit={PAGE}") or []
            names.extend(u["name"] for u in page)
            if len(page) < PAGE:
                return names

    def auth_state(self, name: str) -> Mapping[str, Any]:
        quoted = urllib.parse.quote(name, safe="")
        return (self.call("GET", f"/users/{quoted}") or {}).get("auth_state") or {}

    def delete_user(self, name: str) -> None:
        self.call("DELETE", f"/users/{urllib.parse.quote(name, safe='')}")


def sweep(settings: HubSettings, api: HubApi) -> list[tuple[str, str]]:
    """One round: (name, reason) of every hub user deleted."""
    assert settings.ldap is not None
    accounts = read_accounts(settings.ldap)  # raises: nobody is deleted on a failed read
    done = []
    for name in api.user_names():
        recorded = api.auth_state(name).get(CSN_KEY)
        reason = revocation_reason(name, accounts.get(name), recorded, settings.blocked_users)
        if reason is None:
            continue
        try:
            api.delete_user(name)
        except urllib.error.HTTPError as err:  # e.g. 400 while the server is still stopping
            log.warning("revoking %s (%s) failed: HTTP %s; next round retries", name, reason,
                        err.code)
            continue
        log.warning("revoked %s: %s (sessions, tokens and server ended; data kept)", name,
                    reason)
        done.append((name, reason))
    return done


def main() -> int:
    """Check at start (a hub restart by `pulumi up` acts at once), then every revoke_every s."""
    # JupyterHub stops a managed service with SIGINT, and only 30 s later with SIGTERM
    # (jupyterhub/spawner.py LocalProcessSpawner interrupt_timeout). A hub started with SIGINT
    # ignored (a background job of a non-interactive shell) passes that on: honour it anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(name)s] %(message)s")
    settings = read_settings(load_document(os.environ))
    if settings.ldap is None or settings.ldap.readonly_password_file is None:
        log.error("no LDAP read-only password file: the revocation check cannot run")
        return 2
    api = HubApi(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    while True:
        try:
            sweep(settings, api)
        except Exception as err:  # noqa: BLE001  keep checking; report the kind of failure
            log.error("revocation check failed: %s: %s", type(err).__name__, err)
        time.sleep(settings.revoke_every)


if __name__ == "__main__":
    sys.exit(main())
