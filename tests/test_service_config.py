"""Service-layer settings: accounts, images, auth. Bad input is refused naming the key."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import login_names

from components.config import ConfigError, load_settings
from components.config.accounts import GID_BASE, UID_BASE, derived_id

NAMES = login_names(13).filter(
    lambda n: n not in {"root", "jovyan", "users", "admin", "nobody", "daemon", "bin", "sys",
                        "sudo", "docker", "staff", "adm", "wheel"})


@pytest.fixture(autouse=True)
def _event_loop() -> None:
    """pulumi.Output.secret needs a current event loop, and a test file run earlier in the same
    process (test_hub_config.py, under xdist's file grouping) may leave none."""
    asyncio.set_event_loop(asyncio.new_event_loop())


def load(**config: object) -> object:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return load_settings(raw, "t", frozenset({"users", "githubClientSecret"}))


def refused(key: str, *words: str, secret_keys: frozenset[str] | None = None,
            **config: object) -> None:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    keys = frozenset({"users", "githubClientSecret"}) if secret_keys is None else secret_keys
    with pytest.raises(ConfigError) as err:
        load_settings(raw, "t", keys)
    assert err.value.key == key, str(err.value)
    for word in words:
        assert word in str(err.value)


def uids(users: list[dict]) -> dict[str, int]:
    return {u.name: u.uid for u in load(users=users).service.users}


def test_only_explicit_uids_are_decided_by_the_program() -> None:
    # The others are assigned where they are remembered (tests/test_uid_assignment.py):
    # 2,000 students need no manual step, whatever their names.
    got = uids([{"name": f"student{i}"} for i in range(2000)] + [{"name": "ta", "uid": 5001}])
    assert got["ta"] == 5001
    assert {uid for name, uid in got.items() if name != "ta"} == {None}


@settings(max_examples=40, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=8, unique=True))
def test_gids_derive_from_names_only(names) -> None:
    groups = load(groups=[{"name": n} for n in reversed(names)]).service.groups
    assert {g.name: g.gid for g in groups} == {n: derived_id(n, GID_BASE) for n in names}


def test_derived_id_is_frozen() -> None:
    # Golden values: if this fails, the derivation changed and every deployed user's files
    # would belong to someone else. Never update these numbers; fix the code.
    assert derived_id("alice", UID_BASE) == 420207
    assert derived_id("bob", UID_BASE) == 378650
    assert derived_id("physics", GID_BASE) == 2047201


def test_explicit_uid_wins_and_only_explicit_ones_can_collide() -> None:
    assert uids([{"name": "alice", "uid": 5001}])["alice"] == 5001
    alice = derived_id("alice", UID_BASE)
    assert uids([{"name": "alice"}, {"name": "bob", "uid": alice}])["bob"] == alice
    refused("users[1].uid", "declare uid 5001", "remove 'bob'",
            users=[{"name": "alice", "uid": 5001}, {"name": "bob", "uid": 5001}])


@pytest.mark.parametrize("users, key, word", [
    ([{"name": "alice"}, {"name": "alice"}], "users", "declared twice"),
    ([{"name": "Alice"}], "users[0].name", "not a valid name"),
    ([{"name": "a b"}], "users[0].name", "not a valid name"),
    ([{"name": "*"}], "users[0].name", "not a valid name"),
    ([{"name": ")(uid=*"}], "users[0].name", "not a valid name"),
    ([{"name": "a,ou=x"}], "users[0].name", "not a valid name"),
    ([{"name": "root"}], "users[0].name", "reserved"),
    ([{"name": "alice", "groups": ["ghosts"]}], "users[0].groups", "unknown group"),
    ([{"name": "alice", "groups": "physics"}], "users[0].groups", "list of group names"),
    ([{"name": "alice", "uid": 12}], "users[0].uid", "between 1000"),
    ([{"name": "alice", "uid": "5000"}], "users[0].uid", "between 1000"),
    ([{"name": "alice", "email": "nope"}], "users[0].email", "e-mail"),
    ([{"name": "alice", "admin": "yes"}], "users[0].admin", "true or false"),
    ([{"name": "alice", "shell": "/bin/sh"}], "users[0].shell", "not a known field"),
    ([{"name": "alice", "password": "short"}], "users[0].password", "12 characters"),
    ([{"name": "alice", "passwordGeneration": -1}], "users[0].passwordGeneration", "0 to"),
    ([{"name": "alice", "passwordGeneration": 1.5}], "users[0].passwordGeneration", "whole"),
    ([{"name": "alice", "passwordGeneration": True}], "users[0].passwordGeneration", "whole"),
    ([{"name": "alice", "passwordGeneration": 1_000_001}], "users[0].passwordGeneration", "0 to"),
    ([{"name": "alice", "passwordGeneration": 1, "password": "a-long-enough-secret"}],
     "users[0].passwordGeneration", "has one in config"),
    (["alice"], "users", "not an object"),
])
def test_bad_users_refused(users, key, word) -> None:
    refused(key, word, users=users)


def test_password_in_plain_text_refused() -> None:
    refused("users[0].password", "plain text", secret_keys=frozenset(),
            users=[{"name": "alice", "password": "a-long-enough-secret"}])


def test_removing_a_user_keeps_others_and_disables_only_them() -> None:
    full = uids([{"name": "alice"}, {"name": "bob"}, {"name": "carol"}])
    assert uids([{"name": "carol"}, {"name": "alice"}]) == {k: full[k] for k in ("alice", "carol")}


@pytest.mark.parametrize("groups, key, word", [
    ([{"name": "physics"}, {"name": "physics"}], "groups", "declared twice"),
    ([{"name": "users"}], "groups[0].name", "reserved"),
    ([{"name": "x", "gid": 1}], "groups[0].gid", "between 1000"),
])
def test_bad_groups_refused(groups, key, word) -> None:
    refused(key, word, groups=groups)


@pytest.mark.parametrize("images, key, word", [
    ([{"name": "a", "path": "../services/hub"}], "images[0].path", "under images/"),
    ([{"name": "a", "path": "nonexistent"}], "images[0].path", "under images/"),
    ([{"name": "minimal"}, {"name": "minimal"}], "images", "declared twice"),
    ([{"name": "minimal", "groups": ["ghosts"]}], "images[0].groups", "unknown group"),
    ([{"name": "minimal", "tag": "x"}], "images[0].tag", "not a known field"),
])
def test_bad_images_refused(images, key, word) -> None:
    refused(key, word, images=images)


def test_default_image_menu_is_the_shipped_images() -> None:
    images = load().service.images
    assert [i.name for i in images] == ["minimal", "scipy", "r"]


@pytest.mark.parametrize("config, key, word", [
    ({"auth": "saml"}, "auth", "ldap or github"),
    ({"auth": "github"}, "githubClientId", "required"),
    ({"auth": "github", "githubClientId": "x"}, "githubClientSecret", "required"),
    ({"auth": "github", "githubClientId": "x", "githubClientSecret": "s"}, "githubAllowedOrgs",
     "nobody could log in"),
    ({"acmeEmail": "a@b.org"}, "acmeEmail", "domain is not"),
    ({"domain": "not a domain"}, "domain", "DNS name"),
    ({"ldapBaseDn": "o=Example"}, "ldapBaseDn", "dc="),
    ({"allowedGroups": ["ghosts"]}, "allowedGroups", "unknown group"),
    ({"users": [{"name": "alice", "admin": True}], "blockedUsers": ["alice"]}, "blockedUsers",
     "also an admin"),
    ({"memLimit": "lots"}, "memLimit", "512M"),
    ({"cpuLimit": "0"}, "cpuLimit", "core count"),
    ({"cpuLimit": "many"}, "cpuLimit", "core count"),
    ({"cullIdleTimeout": 30}, "cullIdleTimeout", "at least 300"),
    ({"datasets": [{"name": "d", "path": "relative/dir"}]}, "datasets[0].path", "absolute"),
    ({"datasets": [{"name": "d", "path": "/srv/../etc"}]}, "datasets[0].path", "absolute"),
])
def test_bad_service_config_refused(config, key, word) -> None:
    refused(key, word, **config)


def test_github_secret_must_be_stored_as_secret() -> None:
    refused("githubClientSecret", "plain text", secret_keys=frozenset(), auth="github",
            githubClientId="x", githubClientSecret="s", githubAllowedOrgs=["lab"])
    # even when unused, a plain-text secret in the stack file is refused
    refused("githubClientSecret", "plain text", secret_keys=frozenset(), githubClientSecret="s")


def test_admins_merge_flags_and_list() -> None:
    service = load(users=[{"name": "alice", "admin": True}, {"name": "bob"}],
                   adminUsers=["Octocat"]).service
    assert service.admins == ("alice", "octocat")


def test_previous_crypt_keys_checked_like_the_hub_checks_them() -> None:
    keys = frozenset({"users", "githubClientSecret", "hubPreviousCryptKeys"})
    hex_key, b64_key = "0f" * 32, "A" * 43 + "="
    settings = load_settings({"hubPreviousCryptKeys": f"{hex_key}; {b64_key};"}, "t", keys)
    assert settings.service.previous_crypt_keys is not None
    assert load_settings({}, "t", keys).service.previous_crypt_keys is None
    for bad in ("0f" * 31, f"{hex_key};not-a-key", "ü" * 43):
        refused("hubPreviousCryptKeys", "32 bytes", secret_keys=keys, hubPreviousCryptKeys=bad)
        try:
            load_settings({"hubPreviousCryptKeys": bad}, "t", keys)
        except ConfigError as err:
            assert bad not in str(err) and "0f0f" not in str(err)  # never echoes a key
    refused("hubPreviousCryptKeys", "plain text", secret_keys=frozenset(),
            hubPreviousCryptKeys=hex_key)

def test_configured_secrets_stay_secret_outputs() -> None:
    """Wherever the program passes them (files, env, outputs), Pulumi keeps them encrypted
    only if they are secret Outputs from the start; a container input that happens to hold
    another secret would hide a plain one (the whole input gets marked)."""
    import asyncio

    from pulumi.runtime.sync_await import _sync_await

    asyncio.set_event_loop(asyncio.new_event_loop())
    service = load(auth="github", githubClientId="x", githubClientSecret="gh-secret-value",
                   githubAllowedOrgs=["lab"],
                   users=[{"name": "alice", "password": "a-long-enough-secret"}]).service
    for output in (service.github.client_secret, service.users[0].password):
        assert _sync_await(output.is_secret()) is True
        assert _sync_await(output.future()) in ("gh-secret-value", "a-long-enough-secret")
