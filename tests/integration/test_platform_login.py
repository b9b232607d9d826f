"""Logins through the real proxy and hub against the reconciled directory; the admin API.

Why: the hub's only credential check is a bind as uid=<name>,ou=people,<base> (bind_dn_template),
so these scenarios prove, with the real LDAPAuthenticator and slapd, that a declared user gets in
with the login form and that wrong passwords, blocked users, users outside allowedGroups and
filter/DN-injection-shaped names do not.
"""

from __future__ import annotations

import pytest
import stack


def test_declared_user_logs_in_through_the_form(platform: stack.Platform) -> None:
    browser = stack.Browser(platform.hub.url)
    response = browser.login("ben", platform.passwords["ben"])
    assert response.status_code == 302, response.text[-1000:]
    assert browser.logged_in()
    home = browser.session.get(f"{platform.hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 200 and "ben" in home.text
    # the login recorded the LDAP groups (manage_groups) the image menu relies on
    me = browser.api("GET", "/user")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "ben" and me.json()["groups"] == ["physics"]


def test_login_form_requires_xsrf(platform: stack.Platform) -> None:
    browser = stack.Browser(platform.hub.url)
    browser.session.get(f"{platform.hub.url}/hub/login", timeout=30)
    response = browser.session.post(
        f"{platform.hub.url}/hub/login", allow_redirects=False, timeout=30,
        data={"username": "ben", "password": platform.passwords["ben"]})
    assert response.status_code == 403
    assert not browser.logged_in()


def _refused(platform: stack.Platform, username: str, password: str) -> None:
    browser = stack.Browser(platform.hub.url)
    response = browser.login(username, password)
    assert response.status_code != 302, (username, response.headers)
    assert not browser.logged_in(), username


def test_wrong_password_is_refused(platform: stack.Platform) -> None:
    _refused(platform, "ben", platform.passwords["ben"] + "x")
    _refused(platform, "ben", platform.passwords["ada"])
    _refused(platform, "ben", "")


def test_blocked_user_is_refused(platform: stack.Platform) -> None:
    # dov is a physicist with the right password, but blockedUsers wins
    _refused(platform, "dov", platform.passwords["dov"])


def test_user_outside_allowed_groups_is_refused(platform: stack.Platform) -> None:
    _refused(platform, "cyd", platform.passwords["cyd"])


def test_user_in_an_allowed_group_other_than_physics_logs_in(platform: stack.Platform) -> None:
    assert stack.Browser(platform.hub.url).login("eli", platform.passwords["eli"]).status_code == 302


@pytest.mark.parametrize("username", ["*", ")(uid=*", "ada)(|(uid=*", "a,ou=x", "ada,ou=people",
                                      "ada*", "*)(uid=ada"])
def test_injection_shaped_usernames_are_refused(platform: stack.Platform, username: str) -> None:
    # with a real password of a real user: only the name could make the bind succeed
    _refused(platform, username, platform.passwords["ada"])
    # no such user was created in the hub either
    assert not any(ch in line for line in _hub_user_names(platform) for ch in "*(),")


def _hub_user_names(platform: stack.Platform) -> list[str]:
    return platform.postgres.psql("SELECT name FROM users").splitlines()


def test_admin_reaches_the_admin_api_with_session_and_token(
    platform: stack.Platform, admin: stack.TokenClient
) -> None:
    browser = stack.Browser(platform.hub.url)
    assert browser.login("ada", platform.passwords["ada"]).status_code == 302
    by_session = browser.api("GET", "/users")
    assert by_session.status_code == 200, by_session.text
    names = {user["name"] for user in by_session.json()}
    assert {"ada", "ben"} <= names
    by_token = admin.api("GET", "/users")
    assert by_token.status_code == 200
    assert next(u for u in by_token.json() if u["name"] == "ada")["admin"] is True


def test_non_admin_gets_403_on_the_admin_api(platform: stack.Platform, user_client) -> None:
    ben = user_client("ben")
    assert ben.api("GET", "/users").status_code == 403
    assert ben.api("GET", "/users/ada").status_code in (403, 404)
    assert ben.api("GET", "/users/ben").status_code == 200  # own model only
    browser = stack.Browser(platform.hub.url)
    assert browser.login("ben", platform.passwords["ben"]).status_code == 302
    assert browser.api("GET", "/users").status_code == 403


@pytest.mark.parametrize("typed", ["Ben", "BEN", " ben ", "\tBen\n"])
def test_login_name_is_normalised_before_authentication(platform: stack.Platform,
                                                        typed: str) -> None:
    # the name as a user types it (case, surrounding whitespace) is their login name
    browser = stack.Browser(platform.hub.url)
    response = browser.login(typed, platform.passwords["ben"])
    assert response.status_code == 302, (typed, response.text[-500:])
    assert browser.api("GET", "/user").json()["name"] == "ben"
    # the wrong password stays wrong whatever the case of the name
    _refused(platform, typed, platform.passwords["ada"])
