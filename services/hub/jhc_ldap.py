"""The LDAP authenticator: ldapauthenticator plus the user's posixGroups and uidNumber."""

from __future__ import annotations

from typing import Any

from jhc_values import normalize_login

#: slapd's operational change stamp of an entry, requested explicitly (operational attributes
#: are not returned otherwise), recorded in auth_state at login for jhc_revoke.
ENTRY_CSN = "entryCSN"


def ldap_authenticator_class() -> type:
    """Subclass of LDAPAuthenticator that also records the user's posixGroups and uidNumber.

    ldapauthenticator only reports the groups listed in allowed_groups; the image menu needs
    all of the user's groups, which are synced into JupyterHub groups (manage_groups).
    Defined lazily so this module imports without ldapauthenticator (e.g. for docs checks).
    """
    from ldap3 import SUBTREE
    from ldap3.utils.conv import escape_filter_chars
    from ldapauthenticator import LDAPAuthenticator
    from traitlets import Unicode

    class JhcLDAPAuthenticator(LDAPAuthenticator):
        group_search_base = Unicode(
            "", config=True, help="Base DN below which the user's posixGroups are searched."
        )

        def get_user_attributes(self, conn: Any, userdn: str) -> dict[str, Any]:
            attrs = dict(super().get_user_attributes(conn, userdn))
            uid = (attrs.get("uid") or [None])[0]
            groups: list[str] = []
            if uid and self.group_search_base:
                conn.search(
                    search_base=self.group_search_base,
                    search_scope=SUBTREE,
                    search_filter=(
                        f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(uid)}))"
                    ),
                    attributes=["cn"],
                )
                groups = sorted(str(entry.cn.value) for entry in conn.entries)
            attrs["jhc_posix_groups"] = groups
            return attrs

        async def authenticate(self, handler: Any, data: dict[str, Any]) -> Any:
            password = data.get("password")
            if password is None or not str(password).strip():
                # ldapauthenticator 2 refuses this too; an empty simple bind is an
                # "unauthenticated bind" that many servers accept (the old any-password trap)
                return None
            # "Alice " is alice: normalise before ldapauthenticator's regex check and bind
            # (JupyterHub normalises only the name authenticate() returns)
            try:
                username = normalize_login(data.get("username"))  # type: ignore[arg-type]
            except ValueError:
                self.log.warning("Login refused: invalid username %r", data.get("username"))
                return None
            data = {**data, "username": username}
            result = await super().authenticate(handler, data)
            if not result:
                return None
            auth_state = result["auth_state"]
            attrs = auth_state.get("user_attributes") or {}
            groups = attrs.pop("jhc_posix_groups", [])
            numbers = attrs.get("uidNumber") or []
            if not numbers:
                self.log.warning("Login of %s denied: no uidNumber in LDAP", data["username"])
                return None
            auth_state["uid_number"] = int(numbers[0])
            csn = attrs.get(ENTRY_CSN) or []
            auth_state["entry_csn"] = str(csn[0]) if csn else None
            auth_state["groups"] = groups
            result["groups"] = groups
            return result

    return JhcLDAPAuthenticator

