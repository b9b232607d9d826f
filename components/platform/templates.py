"""Pure renderers for the service templates kept under services/ (tests call them directly)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from components.platform.endpoints import PROXY

SERVICES = Path(__file__).resolve().parents[2] / "services"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SERVICES)),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                          autoescape=False)


def render_caddyfile(site: str, acme_email: str | None, acme_staging: bool) -> str:
    """With an ACME e-mail, Caddy gets a Let's Encrypt certificate for `site` (a domain);
    otherwise its internal CA signs one (for an IP address or localhost)."""
    return _env.get_template("caddy/Caddyfile.j2").render(
        site=site, acme_email=acme_email, acme_staging=acme_staging and bool(acme_email),
        internal_tls=not acme_email, upstream=f"{PROXY.host}:{PROXY.port}")
