"""The rendered Caddyfile, served by the real Caddy (Debian's caddy) in front of a stub upstream.

What is real: Caddy's own adaptation of the Caddyfile and the routes it builds from it (the
metrics block, the headers, the reverse proxy). What the test changes, in the adapted JSON and
nowhere else: the listener (a loopback port, plain HTTP, automatic HTTPS and the certificate
apps removed: no ACME request, no CA installed) and the upstream's address (Docker's DNS name
"proxy" becomes the stub's loopback port). The stub answers like JupyterHub's proxy would,
with JupyterHub's default Content-Security-Policy, and records every path it receives.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from components.platform.templates import render_caddyfile

pytestmark = pytest.mark.needs("caddy")
HUB_CSP = "frame-ancestors 'none'; report-uri /hub/security/csp-report"  # JupyterHub >= 4.1
SITES = [("198.51.100.10", None, False), ("hub.example.org", "ops@example.org", True)]


class Stub(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Stub.seen.append(self.path)
        body = f"upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Security-Policy", HUB_CSP)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_loopback(adapted: dict, port: int, upstream: int) -> dict:
    """The adapted config with only the listener and the upstream's address changed."""
    for server in adapted["apps"]["http"]["servers"].values():
        server["listen"] = [f"127.0.0.1:{port}"]
        server["automatic_https"] = {"disable": True}
        server.pop("tls_connection_policies", None)
    adapted["apps"].pop("tls", None)
    adapted["apps"].pop("pki", None)
    text = json.dumps(adapted)
    assert text.count('"dial": "proxy:8000"') == 1, "expected one upstream, the proxy"
    return json.loads(text.replace('"dial": "proxy:8000"', f'"dial": "127.0.0.1:{upstream}"'))


@pytest.fixture(scope="module", params=SITES, ids=lambda s: s[0])
def caddy(request, upstream, tmp_path_factory) -> Iterator[tuple[int, str]]:
    site = request.param[0]
    tmp = tmp_path_factory.mktemp("caddy")
    (tmp / "Caddyfile").write_text(render_caddyfile(*request.param))
    adapted = subprocess.run(["caddy", "adapt", "--config", str(tmp / "Caddyfile"),
                              "--adapter", "caddyfile"], capture_output=True, text=True, check=True)
    port = free_port()
    config = on_loopback(json.loads(adapted.stdout), port, upstream)
    config["storage"] = {"module": "file_system", "root": str(tmp / "data")}
    (tmp / "caddy.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "xdg-data"),
           "XDG_CONFIG_HOME": str(tmp / "xdg-config")}
    proc = subprocess.Popen(["caddy", "run", "--config", str(tmp / "caddy.json")], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "caddy.log", "wb"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp / "caddy.log").read_text()
                assert time.monotonic() < deadline, (tmp / "caddy.log").read_text()
                time.sleep(0.05)
        yield port, site
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(port: int, site: str, path: str) -> tuple[int, http.client.HTTPMessage, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": site})
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        conn.close()


def test_hub_pages_are_proxied(caddy) -> None:
    status, _headers, body = get(*caddy, "/hub/login?next=%2Fhub%2F")
    assert (status, body) == (200, "upstream /hub/login?next=%2Fhub%2F")


@pytest.mark.parametrize("path", ["/hub/metrics", "/hub/metrics/", "/hub/metrics?format=text",
                                  "/hub/metrics/extra", "/hub/%6detrics"])
def test_metrics_never_reach_the_hub(caddy, path) -> None:
    Stub.seen.clear()
    status, _headers, _body = get(*caddy, path)
    assert status == 404
    assert Stub.seen == []


def test_content_security_policy(caddy) -> None:
    _status, headers, _body = get(*caddy, "/user/alice/lab")
    policies = headers.get_all("Content-Security-Policy") or []
    assert HUB_CSP in policies  # the upstream's own policy is kept, not replaced
    ours = [p for p in policies if p != HUB_CSP]
    assert len(ours) == 1, policies
    directives = {d.split()[0]: d.split()[1:] for d in ours[0].split(";") if d.strip()}
    assert directives == {"frame-ancestors": ["'self'"], "base-uri": ["'self'"],
                          "form-action": ["'self'"]}
    # Nothing that would stop JupyterLab's scripts, styles or kernels' websockets.
    assert not {"default-src", "script-src", "style-src", "connect-src"} & set(directives)

