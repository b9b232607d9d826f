"""The hub's variables: the one table of every JHC_* variable the hub reads.

docs/hub.md's table is generated from :data:`VARIABLES` (scripts/hub_reference.py; a test fails
on drift), ``jhc_settings.Env`` refuses to read a variable missing here, and ``config_key``
names the stack config key that feeds a variable, so the Pulumi program can name the key when
the hub's validation refuses a value at preview. Stdlib only (program and hub image).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One JHC_* variable: the row of the docs table, and the stack config key that feeds it."""

    name: str
    meaning: str
    default: str = ""
    required: str = "no"  # yes | ldap | github | db | TLS | github* (see meaning)
    config_key: str | None = None  # the stack config key the Pulumi program fills it from


VARIABLES: tuple[Variable, ...] = (
    Variable("JHC_COOKIE_SECRET_FILE", "file with the cookie secret (>= 32 bytes, hex)",
             required="yes"),
    Variable("JHC_CRYPT_KEY_FILE", "file with the auth_state key(s): 32 bytes hex or base64; "
             '";"-separated for rotation, the first one encrypts', required="yes"),
    Variable("JHC_PROXY_AUTH_TOKEN_FILE", "file with the proxy API token (the proxy container "
             "gets the same value as CONFIGPROXY_AUTH_TOKEN)", required="yes"),
    Variable("JHC_PROXY_API_URL", "REST API of the configurable-http-proxy container",
             "http://proxy:8001"),
    Variable("JHC_HUB_PORT", "hub's internal port, bound on 0.0.0.0 inside its container", "8081"),
    Variable("JHC_HUB_CONNECT_HOST", "DNS name of the hub on jhc-frontend, used by user "
             "containers", "jupyterhub"),
    Variable("JHC_PUBLIC_URL", "public URL, e.g. https://hub.example.org (*github: this or "
             "JHC_GITHUB_CALLBACK_URL)", "(from requests)", "github*", "domain"),
    Variable("JHC_DB_HOST", "Postgres host; unset = local sqlite file (tests and trials only)",
             "(sqlite)"),
    Variable("JHC_DB_PORT", "Postgres port", "5432"),
    Variable("JHC_DB_NAME", "Postgres database", "jupyterhub"),
    Variable("JHC_DB_USER", "Postgres role", "jupyterhub"),
    Variable("JHC_DB_PASSWORD_FILE", "file with that role's password (required when JHC_DB_HOST "
             "is set)", required="db"),
    Variable("JHC_AUTH", "ldap or github", "ldap", config_key="auth"),
    Variable("JHC_LDAP_SERVER", "LDAP host on the internal network jhc-backend", "ldap"),
    Variable("JHC_LDAP_PORT", "LDAP port (636 when JHC_LDAP_TLS_STRATEGY=on_connect)",
             "389 / 636"),
    Variable("JHC_LDAP_BASE_DN", "directory suffix, e.g. dc=jhc,dc=internal", required="ldap",
             config_key="ldapBaseDn"),
    Variable("JHC_LDAP_USER_BASE", "users (posixAccount) are uid=<user>,<this>",
             "ou=people,<base>"),
    Variable("JHC_LDAP_GROUP_BASE", "groups (posixGroup with memberUid) are searched below this",
             "ou=groups,<base>"),
    Variable("JHC_LDAP_TLS_STRATEGY", "insecure, before_bind (StartTLS) or on_connect (LDAPS); "
             "see below", "insecure"),
    Variable("JHC_LDAP_CA_FILE", "CA bundle for the LDAP server certificate (required unless "
             "insecure)", required="TLS"),
    Variable("JHC_LDAP_READONLY_PASSWORD_FILE", "file with the password of cn=readonly,<base>, "
             "the directory's read-only account: the revocation check re-reads accounts with it "
             "(the hub holds no write credential); unset = no revocation check", "(none)"),
    Variable("JHC_ALLOWED_GROUPS", "comma list of LDAP group names whose members may log in",
             "(none)", config_key="allowedGroups"),
    Variable("JHC_GITHUB_CLIENT_ID", "GitHub OAuth app client id", required="github",
             config_key="githubClientId"),
    Variable("JHC_GITHUB_CLIENT_SECRET_FILE", "file with the GitHub OAuth app client secret",
             required="github", config_key="githubClientSecret"),
    Variable("JHC_GITHUB_CALLBACK_URL", "OAuth callback URL registered in the GitHub app",
             "<public>/hub/oauth_callback"),
    Variable("JHC_GITHUB_ALLOWED_ORGS", "comma list of orgs or org:team allowed (*github: this or "
             "JHC_ALLOWED_USERS)", "(none)", "github*", "githubAllowedOrgs"),
    Variable("JHC_GROUPS_JSON", 'github only: {"group": ["user", ...]} hub groups for the image '
             "menu (only adds)", "{}", config_key="groups"),
    Variable("JHC_ADMIN_USERS", "comma list of hub admins (always allowed)", "(none)",
             config_key="adminUsers"),
    Variable("JHC_ALLOWED_USERS", "comma list of users allowed to log in", "(none)",
             config_key="allowedUsers"),
    Variable("JHC_BLOCKED_USERS", "comma list of users never allowed to log in", "(none)",
             config_key="blockedUsers"),
    Variable("JHC_UIDS_JSON", '{"user": uid}: explicit uids of GitHub users; the others are '
             "registered once in the hub's database (jhc_uid_registry)", "{}",
             config_key="users"),
    Variable("JHC_IMAGES_JSON", 'image menu: [{"name", "display_name", "image", "groups": '
             "[...]}]; image = local reference or id; empty groups = everyone", required="yes",
             config_key="images"),
    Variable("JHC_NETWORK", "docker network of the user containers", "jhc-frontend"),
    Variable("JHC_SPAWNER", "docker: user servers are containers on this host "
             "(DockerSpawner); swarm: services on the Swarm's worker nodes (SwarmSpawner), set "
             "when the stack has workers; JHC_NETWORK is then the attachable overlay and every "
             "menu image a registry digest reference", "docker", config_key="hostWorkers"),
    Variable("JHC_HOMES_HOST_DIR", "homes directory on the docker host", "/srv/jupyterhub/homes"),
    Variable("JHC_HOMES_HUB_DIR", "the same directory as mounted into the hub container",
             "/homes"),
    Variable("JHC_SHARED_HOST_DIR", 'host dir mounted rw at /home/<user>/shared; "none" = no '
             "shared dir", "/srv/jupyterhub/shared"),
    Variable("JHC_SHARED_HUB_DIR", "the shared dir as mounted into the hub; made gid 100, mode "
             "2775 when root-owned (the local stack)", "(none)"),
    Variable("JHC_DATASETS_JSON", '[{"name", "host_path"}] mounted read-only at '
             "/home/<user>/datasets/<name>", "[]", config_key="datasets"),
    Variable("JHC_MEM_LIMIT", "memory limit per user container (e.g. 512M, 1.5G); 0 = none",
             "2G", config_key="memLimit"),
    Variable("JHC_CPU_LIMIT", "CPU limit per user container (e.g. 1.5); 0 = none", "1",
             config_key="cpuLimit"),
    Variable("JHC_PIDS_LIMIT", "process limit per user container; 0 = none", "1024"),
    Variable("JHC_START_TIMEOUT", "seconds a user container may take to start and answer", "120"),
    Variable("JHC_CULL_TIMEOUT", "stop servers idle for this many seconds; 0 = no culler", "3600",
             config_key="cullIdleTimeout"),
    Variable("JHC_REVOKE_EVERY", "seconds between revocation checks: hub users removed, disabled "
             "or blocked, or whose LDAP entry changed since their login (password reset), are "
             "deleted from the hub (sessions, tokens, server; data kept)", "60"),
    Variable("JHC_CULL_EVERY", "culler interval in seconds; 0 = the culler's default (timeout/2)",
             "300"),
)
BY_VARIABLE: dict[str, Variable] = {v.name: v for v in VARIABLES}


class HubConfigError(ValueError):
    """A JHC_* variable is missing or malformed; the message names the variable."""

    def __init__(self, var: str, problem: str) -> None:
        super().__init__(f"{var}: {problem}")
        self.var = var
        self.problem = problem
