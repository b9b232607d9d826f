"""Pinned third-party images pulled on the host (the hub, LDAP and notebook images are built)."""

POSTGRES_IMAGE = "postgres:17-bookworm"  # major pinned: a new major needs a dump/restore
PROXY_IMAGE = "quay.io/jupyterhub/configurable-http-proxy:5.3.0"
CADDY_IMAGE = "caddy:2.11.4"
