"""Access ends when the admin says so: removal, block and password reset end every session,
token and server of the user (data kept); re-adding restores access with the same uid/home.

Why a platform of its own: the scenarios change the declared users (the reconcile disables a
removed account, replaces a reset password) and restart the hub with a new block list, which
would disturb the session platform's users. Everything is real: the project's reconcile CLI
against slapd, the hub with its revocation check (JHC_REVOKE_EVERY shortened to 2 s; the
stack's default is 60 s), PostgreSQL and user containers on the Docker engine.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import stack

EVERY = 2
#: Names unlike the session platform's (container names jupyter-<user> are engine-wide).
REMOVED, BLOCKED, RESET, KEPT = "rvfay", "rvgil", "rvhal", "rvivy"
CONFIG: dict[str, Any] = {
    "groups": [{"name": "physics"}],
    "users": [{"name": "rvada", "groups": ["physics"], "admin": True}]
    + [{"name": n, "groups": ["physics"]} for n in (REMOVED, BLOCKED, RESET, KEPT)],
    "images": [{"name": "minimal", "displayName": "Minimal Python", "path": "minimal"}],
    "memLimit": "512M",
    "cpuLimit": "0.5",
    "cullIdleTimeout": 3600,
}


@dataclass
class Session:
    """A user's login cookie, an API token made with it, the server's container."""

    browser: stack.Browser
    token: stack.TokenClient
    container_id: str
    marker: Path


def _login(platform: stack.Platform, name: str, password: str) -> stack.Browser:
    browser = stack.Browser(platform.hub.url)
    response = browser.login(name, password)
    assert response.status_code == 302, (name, response.text[-500:])
    return browser


def _session(platform: stack.Platform, engine: docker.DockerClient, name: str) -> Session:
    browser = _login(platform, name, platform.passwords[name])
    token = stack.TokenClient(platform.hub.url, browser.new_token(name))
    assert token.start_server(name).status_code in (201, 202)
    marker = platform.data_dir / "homes" / name / "kept.txt"
    marker.write_text(f"{name}'s work\n")
    return Session(browser, token, engine.containers.get(f"jupyter-{name}").id, marker)


def _home_page(session: Session) -> int:
    return session.browser.session.get(f"{session.browser.base}/hub/home",
                                       allow_redirects=False, timeout=30).status_code


def _alive(session: Session, name: str, engine: docker.DockerClient) -> dict[str, bool]:
    """What still works for a session: the hub page by cookie, the API by cookie and by token,
    the server's container."""
    try:
        engine.containers.get(session.container_id)
        container = True
    except docker.errors.NotFound:
        container = False
    return {"home": _home_page(session) == 200,
            "api_cookie": session.browser.api("GET", "/user").status_code == 200,
            "api_token": session.token.api("GET", "/user").status_code == 200,
            "container": container}


def _reconcile(platform: stack.Platform, raw: dict[str, Any], passwords: dict[str, str]) -> None:
    settings = stack.stack_settings(platform.data_dir, raw)
    stack.reconcile_ldap(platform.ldap, settings, passwords)


def _restart_with_blocked(platform: stack.Platform, blocked: list[str]) -> None:
    """What `pulumi up` does when blockedUsers changes: a new settings document, a new hub."""
    path = Path(platform.hub.env["JHC_SETTINGS_FILE"])
    document = json.loads(path.read_text())
    document["JHC_BLOCKED_USERS"] = ",".join(blocked)
    path.write_text(json.dumps(document))
    platform.hub.restart()


@pytest.fixture(scope="module")
def revoking(docker_engine: docker.DockerClient, notebook_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Sessions of four users, then: REMOVED taken out of `users`, RESET given a new password
    (both by the reconcile, hub untouched), BLOCKED added to blockedUsers (hub restarted)."""
    platform = stack.start_platform(tmp_path_factory.mktemp("revoke"), docker_engine,
                                    notebook_image, CONFIG,
                                    hub_extra={"JHC_REVOKE_EVERY": str(EVERY)})
    try:
        admin = stack.TokenClient(platform.hub.url, _login(
            platform, "rvada", platform.passwords["rvada"]).new_token("rvada"))
        sessions = {n: _session(platform, docker_engine, n)
                    for n in (REMOVED, BLOCKED, RESET, KEPT)}
        uid_before = admin.user(REMOVED)["auth_state"]["uid_number"]
        old_reset_password = platform.passwords[RESET]
        passwords = dict(platform.passwords)
        passwords[RESET] = "pw-" + secrets.token_urlsafe(15)
        del passwords[REMOVED]
        raw = {**CONFIG, "users": [u for u in CONFIG["users"] if u["name"] != REMOVED]}
        _reconcile(platform, raw, passwords)
        platform.passwords[RESET] = passwords[RESET]
        yield {"platform": platform, "admin": admin, "sessions": sessions,
               "uid_before": uid_before, "old_reset_password": old_reset_password}
    finally:
        stack.stop_platform(platform)
        for name in (REMOVED, BLOCKED, RESET, KEPT, "rvada"):
            try:
                docker_engine.containers.get(f"jupyter-{name}").remove(force=True)
            except docker.errors.NotFound:
                pass


def _wait_ended(revoking: dict[str, Any], name: str, engine: docker.DockerClient,
                timeout: float = 10 * EVERY + 60) -> None:
    session = revoking["sessions"][name]
    nothing = dict.fromkeys(("home", "api_cookie", "api_token", "container"), False)
    stack.wait_until(lambda: _alive(session, name, engine) == nothing, timeout,
                     f"every session, token and the server of {name} to end", interval=1)
    assert session.marker.read_text() == f"{name}'s work\n"  # the data is kept


def test_removed_user_loses_sessions_tokens_and_server(revoking: dict[str, Any],
                                                        docker_engine: docker.DockerClient) -> None:
    _wait_ended(revoking, REMOVED, docker_engine)
    platform = revoking["platform"]
    # a new login is refused too (the reconcile removed the password)
    assert stack.Browser(platform.hub.url).login(REMOVED, platform.passwords[REMOVED]
                                                 ).status_code != 302


def test_password_reset_ends_the_old_sessions(revoking: dict[str, Any],
                                              docker_engine: docker.DockerClient) -> None:
    _wait_ended(revoking, RESET, docker_engine)
    platform = revoking["platform"]
    assert stack.Browser(platform.hub.url).login(
        RESET, revoking["old_reset_password"]).status_code != 302
    fresh = _login(platform, RESET, platform.passwords[RESET])
    assert fresh.api("GET", "/user").json()["name"] == RESET
    # the new session survives the next checks (its login recorded the new entryCSN)
    time.sleep(3 * EVERY)
    assert fresh.api("GET", "/user").status_code == 200


def test_untouched_user_keeps_access(revoking: dict[str, Any],
                                     docker_engine: docker.DockerClient) -> None:
    # the control: the checks end exactly the revoked users' access
    _wait_ended(revoking, REMOVED, docker_engine)
    session = revoking["sessions"][KEPT]
    assert _alive(session, KEPT, docker_engine) == dict.fromkeys(
        ("home", "api_cookie", "api_token", "container"), True)


def test_blocked_user_loses_home_page_api_and_server(revoking: dict[str, Any],
                                                     docker_engine: docker.DockerClient) -> None:
    platform = revoking["platform"]
    session = revoking["sessions"][BLOCKED]
    assert _home_page(session) == 200  # the control: still in before the block
    _restart_with_blocked(platform, [BLOCKED])
    _wait_ended(revoking, BLOCKED, docker_engine)
    assert stack.Browser(platform.hub.url).login(BLOCKED, platform.passwords[BLOCKED]
                                                 ).status_code != 302
    kept = revoking["sessions"][KEPT]
    assert _alive(kept, KEPT, docker_engine)["api_token"]  # the restart revoked only the block


def test_readding_restores_access_with_the_same_uid_and_home(
        revoking: dict[str, Any], docker_engine: docker.DockerClient) -> None:
    _wait_ended(revoking, REMOVED, docker_engine)
    platform = revoking["platform"]
    _reconcile(platform, CONFIG, platform.passwords)
    browser = _login(platform, REMOVED, platform.passwords[REMOVED])
    state = revoking["admin"].user(REMOVED)["auth_state"]
    assert state["uid_number"] == revoking["uid_before"] == platform.uid_of(REMOVED)
    token = stack.TokenClient(platform.hub.url, browser.new_token(REMOVED))
    assert token.start_server(REMOVED).status_code in (201, 202)
    box = docker_engine.containers.get(f"jupyter-{REMOVED}")
    code, out = box.exec_run(["cat", f"/home/{REMOVED}/kept.txt"],
                             user=f"{platform.uid_of(REMOVED)}:100")
    assert code == 0 and out.decode() == f"{REMOVED}'s work\n", out
