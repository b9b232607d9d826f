"""Static JupyterHub configuration of jupyterhub-cloud, driven only by the environment.

Why static and env-driven: the file is baked into the hub image and tested as is; the
Pulumi component changes a deployment by changing the variables below, never the file.
Secrets are passed as files (``*_FILE`` variables naming a file of mode 600 mounted into
the hub container), never as plain variables, because plain variables show up in
``docker inspect``. The only secret that must be an environment variable is the proxy's
own ``CONFIGPROXY_AUTH_TOKEN`` in the *proxy* container (configurable-http-proxy insists);
the hub reads the same token from JHC_PROXY_AUTH_TOKEN_FILE.

All logic lives in ``jhc_hub.py`` next to this file (importable, unit-tested). A missing or
malformed variable stops the hub at start with ``jhc_hub.HubConfigError: JHC_X: <problem>``.

Variables (req: yes = always; ldap/github = with that JHC_AUTH; db = with JHC_DB_HOST;
TLS = with a JHC_LDAP_TLS_STRATEGY other than insecure):

============================= ======= ========================== ===================================
name                          req     default                    meaning
============================= ======= ========================== ===================================
JHC_COOKIE_SECRET_FILE        yes                                file with the cookie secret (>= 32
                                                                 bytes, hex)
JHC_CRYPT_KEY_FILE            yes                                file with the auth_state key(s): 32
                                                                 bytes hex or base64; ";"-separated
                                                                 for rotation, the first one
                                                                 encrypts
JHC_PROXY_AUTH_TOKEN_FILE     yes                                file with the proxy API token (the
                                                                 proxy container gets the same value
                                                                 as CONFIGPROXY_AUTH_TOKEN)
JHC_PROXY_API_URL             no      http://proxy:8001          REST API of the configurable-http-
                                                                 proxy container
JHC_HUB_PORT                  no      8081                       hub's internal port, bound on
                                                                 0.0.0.0 inside its container
JHC_HUB_CONNECT_HOST          no      jupyterhub                 DNS name of the hub on jhc-
                                                                 frontend, used by user containers
JHC_PUBLIC_URL                github* (from requests)            public URL, e.g.
                                                                 https://hub.example.org (*github:
                                                                 this or JHC_GITHUB_CALLBACK_URL)
JHC_DB_HOST                   no      (sqlite)                   Postgres host; unset = local sqlite
                                                                 file (tests and trials only)
JHC_DB_PORT                   no      5432                       Postgres port
JHC_DB_NAME                   no      jupyterhub                 Postgres database
JHC_DB_USER                   no      jupyterhub                 Postgres role
JHC_DB_PASSWORD_FILE          db                                 file with that role's password
                                                                 (required when JHC_DB_HOST is set)
JHC_AUTH                      no      ldap                       ldap or github
JHC_LDAP_SERVER               no      ldap                       LDAP host on the internal network
                                                                 jhc-backend
JHC_LDAP_PORT                 no      389 / 636                  LDAP port (636 when
                                                                 JHC_LDAP_TLS_STRATEGY=on_connect)
JHC_LDAP_BASE_DN              ldap                               directory suffix, e.g.
                                                                 dc=jhc,dc=internal
JHC_LDAP_USER_BASE            no      ou=people,<base>           users (posixAccount) are
                                                                 uid=<user>,<this>
JHC_LDAP_GROUP_BASE           no      ou=groups,<base>           groups (posixGroup with memberUid)
                                                                 are searched below this
JHC_LDAP_TLS_STRATEGY         no      insecure                   insecure, before_bind (StartTLS) or
                                                                 on_connect (LDAPS); see below
JHC_LDAP_CA_FILE              TLS                                CA bundle for the LDAP server
                                                                 certificate (required unless
                                                                 insecure)
JHC_ALLOWED_GROUPS            no      (none)                     comma list of LDAP group names
                                                                 whose members may log in
JHC_GITHUB_CLIENT_ID          github                             GitHub OAuth app client id
JHC_GITHUB_CLIENT_SECRET_FILE github                             file with the GitHub OAuth app
                                                                 client secret
JHC_GITHUB_CALLBACK_URL       no      <public>/hub/oauth_callback OAuth callback URL registered in
                                                                 the GitHub app
JHC_GITHUB_ALLOWED_ORGS       github* (none)                     comma list of orgs or org:team
                                                                 allowed (*github: this or
                                                                 JHC_ALLOWED_USERS)
JHC_GROUPS_JSON               no      {}                         github only: {"group": ["user",
                                                                 ...]} hub groups for the image menu
                                                                 (only adds)
JHC_ADMIN_USERS               no      (none)                     comma list of hub admins (always
                                                                 allowed)
JHC_ALLOWED_USERS             no      (none)                     comma list of users allowed to log
                                                                 in
JHC_BLOCKED_USERS             no      (none)                     comma list of users never allowed
                                                                 to log in
JHC_UIDS_JSON                 no      {}                         {"user": uid}: explicit uids of
                                                                 GitHub users (others: registered
                                                                 in the hub's database)
JHC_IMAGES_JSON               yes                                image menu: [{"name",
                                                                 "display_name", "image", "groups":
                                                                 [...]}]; image = local reference or
                                                                 id; empty groups = everyone
JHC_NETWORK                   no      jhc-frontend               docker network of the user
                                                                 containers
JHC_HOMES_HOST_DIR            no      /srv/jupyterhub/homes      homes directory on the docker host
JHC_HOMES_HUB_DIR             no      /homes                     the same directory as mounted into
                                                                 the hub container
JHC_SHARED_HOST_DIR           no      /srv/jupyterhub/shared     host dir mounted rw at
                                                                 /home/<user>/shared; "none" = no
                                                                 shared dir
JHC_SHARED_HUB_DIR            no      (none)                     the shared dir as mounted into the
                                                                 hub: made gid 100, mode 2775 if
                                                                 root-owned (local stack)
JHC_DATASETS_JSON             no      []                         [{"name", "host_path"}] mounted
                                                                 read-only at
                                                                 /home/<user>/datasets/<name>
JHC_MEM_LIMIT                 no      2G                         memory limit per user container
                                                                 (e.g. 512M, 4G); 0 = none
JHC_CPU_LIMIT                 no      1                          CPU limit per user container (e.g.
                                                                 1.5); 0 = none
JHC_PIDS_LIMIT                no      1024                       process limit per user container; 0
                                                                 = none
JHC_START_TIMEOUT             no      120                        seconds a user container may take
                                                                 to start and answer
JHC_CULL_TIMEOUT              no      3600                       stop servers idle for this many
                                                                 seconds; 0 = no culler
JHC_CULL_EVERY                no      300                        culler interval in seconds; 0 = the
                                                                 culler's default (timeout/2)
============================= ======= ========================== ===================================

LDAP transport: with before_bind or on_connect the server certificate is validated against
JHC_LDAP_CA_FILE. ``insecure`` (plain LDAP) is the default and acceptable
only because the LDAP server is reachable solely on the internal docker network
``jhc-backend`` (no published port, no route from user containers); passwords cross only
that bridge inside the VM.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jhc_hub  # noqa: E402

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets)
jhc_hub.configure(c, os.environ)
