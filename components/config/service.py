"""The service layer's keys: accounts, images, datasets, limits, auth, backups, hub keys."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pulumi

from components.config.accounts import GID_BASE, NAME, RESERVED, Group, User, assign_ids
from components.config.reader import _hhmm, _Reader
from components.config.settings import (
    DEFAULT_IMAGES,
    IMAGES_DIR,
    BackupSettings,
    ConfigError,
    Dataset,
    GithubSettings,
    HostSettings,
    NotebookImage,
    ServiceSettings,
)
from services.hub.jhc_values import cpu_amount, memory_bytes, normalize_login

MAX_PASSWORD_GENERATION = 1_000_000


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ConfigError(key, f"{value!r} is not a valid name",
                          "Use lower-case letters, digits, '-' and '_', starting with a letter")
    if value in RESERVED:
        raise ConfigError(key, f"{value!r} is reserved", "Choose another name")
    return value


def _unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(key, f"{name!r} is declared twice", "Keep one entry per name")
        seen.add(name)


def _explicit_id(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value < 2**31:
        raise ConfigError(key, f"{value!r} is not an id between 1000 and 2147483647",
                          "Give a whole number, or leave it out to have one assigned")
    return value


def _groups(r: _Reader) -> tuple[Group, ...]:
    items = r.objects("groups", {"name", "gid"})
    names = [_name(f"groups[{i}].name", item.get("name")) for i, item in enumerate(items)]
    _unique("groups", names)
    ids, clash = assign_ids(
        ((n, _explicit_id(f"groups[{i}].gid", items[i].get("gid"))) for i, n in enumerate(names)),
        GID_BASE)
    if clash:
        raise ConfigError("groups", f"{clash[0]!r} and {clash[1]!r} get the same gid",
                          f"Give {clash[1]!r} an explicit gid")
    return tuple(Group(n, ids[n]) for n in names)


def _users(r: _Reader, groups: tuple[Group, ...]) -> tuple[User, ...]:
    items = r.objects("users", {"name", "fullName", "email", "groups", "admin", "uid", "password",
                                "passwordGeneration"})
    names = [_name(f"users[{i}].name", item.get("name")) for i, item in enumerate(items)]
    _unique("users", names)
    # Only explicit uids are decided here; the others are assigned where they are remembered
    # (LDAP's reconcile, or the hub's uid registry for GitHub logins), free of collisions.
    ids: dict[str, int | None] = {}
    owner: dict[int, str] = {}
    for i, name in enumerate(names):
        ids[name] = uid = _explicit_id(f"users[{i}].uid", items[i].get("uid"))
        if uid is not None and uid in owner:
            raise ConfigError(f"users[{i}].uid", f"{owner[uid]!r} and {name!r} declare uid {uid}",
                              f"Keep {owner[uid]!r}'s (it owns files); remove {name!r}'s to "
                              "have one assigned")
        if uid is not None:
            owner[uid] = name
    known = {g.name for g in groups}
    users = []
    for i, (name, item) in enumerate(zip(names, items, strict=True)):
        member_of = item.get("groups", [])
        if not isinstance(member_of, list) or not all(isinstance(g, str) for g in member_of):
            raise ConfigError(f"users[{i}].groups", "must be a list of group names",
                              "Write groups: [name, ...]")
        for group in member_of:
            if group not in known:
                raise ConfigError(f"users[{i}].groups", f"unknown group {group!r}",
                                  "Declare it under `groups` first")
        email = item.get("email")
        if email is not None and not (isinstance(email, str)
                                      and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email)):
            raise ConfigError(f"users[{i}].email", f"{email!r} is not an e-mail address",
                              "Write it as name@example.org or leave it out")
        admin = item.get("admin", False)
        if not isinstance(admin, bool):
            raise ConfigError(f"users[{i}].admin", "must be true or false", "Write admin: true")
        password = item.get("password")
        if password is not None:
            if "users" not in r.secret_keys:
                raise ConfigError(f"users[{i}].password", "is stored in plain text",
                                  f"Run `pulumi config set --secret --path 'users[{i}].password'`")
            if not isinstance(password, str) or len(password) < 12:
                raise ConfigError(f"users[{i}].password", "is shorter than 12 characters",
                                  "Choose a longer password, or leave it out to have one generated")
        generation = item.get("passwordGeneration", 0)
        if isinstance(generation, bool) or not isinstance(generation, int) \
                or not 0 <= generation <= MAX_PASSWORD_GENERATION:
            raise ConfigError(f"users[{i}].passwordGeneration",
                              f"{generation!r} is not a whole number from 0 to "
                              f"{MAX_PASSWORD_GENERATION}", "Raise it by one to reset the password")
        if generation and password is not None:
            raise ConfigError(f"users[{i}].passwordGeneration",
                              "only resets a generated password, and this user has one in config",
                              "Remove passwordGeneration, or remove the password to have one "
                              "generated")
        full_name = item.get("fullName", name)
        if not isinstance(full_name, str) or not full_name.strip():
            raise ConfigError(f"users[{i}].fullName", "must be a non-empty string", "Fix or remove it")
        users.append(User(name=name, uid=ids[name], full_name=full_name, email=email,
                          groups=tuple(member_of), admin=admin,
                          password=pulumi.Output.secret(password) if password else None,
                          password_generation=generation))
    return tuple(users)


def _images(r: _Reader, groups: tuple[Group, ...]) -> tuple[NotebookImage, ...]:
    items = r.objects("images", {"name", "displayName", "path", "groups"}) or list(DEFAULT_IMAGES)
    known = {g.name for g in groups}
    images = []
    for i, item in enumerate(items):
        name = _name(f"images[{i}].name", item.get("name"))
        path = item.get("path", name)
        folder = (IMAGES_DIR / str(path)).resolve()
        if (not isinstance(path, str) or not folder.is_relative_to(IMAGES_DIR)
                or not (folder / "Dockerfile").is_file()):
            raise ConfigError(f"images[{i}].path", f"{path!r} is not a directory with a Dockerfile "
                              "under images/", "Add the directory, or fix the path")
        allowed = item.get("groups", [])
        for group in allowed:
            if group not in known:
                raise ConfigError(f"images[{i}].groups", f"unknown group {group!r}",
                                  "Declare it under `groups` first")
        images.append(NotebookImage(name, str(item.get("displayName", name)), path, tuple(allowed)))
    _unique("images", [image.name for image in images])
    return tuple(images)


def _datasets(r: _Reader, data_dir: str, workers: bool = False) -> tuple[Dataset, ...]:
    """With workers, only <data dir>/datasets is exported to them (NFS), so a dataset elsewhere
    on the main host would be missing on every worker."""
    datasets = []
    for i, item in enumerate(r.objects("datasets", {"name", "path"})):
        name = _name(f"datasets[{i}].name", item.get("name"))
        path = item.get("path", f"{data_dir}/datasets/{name}")
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f"datasets[{i}].path", f"{path!r} is not an absolute path",
                              "Give an absolute path on the host without '..'")
        if workers and not path.startswith(f"{data_dir}/datasets/"):
            raise ConfigError(f"datasets[{i}].path", f"{path} is outside {data_dir}/datasets, "
                              "which is all the workers see of the main host",
                              f"Move the data under {data_dir}/datasets/ on the main host and "
                              "drop the path (or set hostWorkers to 0)")
        datasets.append(Dataset(name, path))
    _unique("datasets", [d.name for d in datasets])
    return tuple(datasets)


def _login(key: str, value: str) -> str:
    """A login name as the hub normalises it (jhc_values: the one definition)."""
    try:
        login = normalize_login(value)
    except ValueError as err:
        raise ConfigError(key, str(err), "Use at most 32 lower-case letters, digits, '.', '-' "
                          "and '_', not all digits, as the hub does") from None
    if login in RESERVED:
        raise ConfigError(key, f"{login!r} is reserved", "Choose another name")
    return login


def _logins(r: _Reader, name: str) -> tuple[str, ...]:
    return tuple(_login(name, v) for v in r.strings(name))


def _service(r: _Reader, host: HostSettings) -> ServiceSettings:
    domain = r.string("domain")
    if domain and not re.match(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", domain):
        raise ConfigError("domain", f"{domain!r} is not a DNS name", "Use a name like hub.example.org")
    acme_email = r.string("acmeEmail")
    if acme_email and not domain:
        raise ConfigError("acmeEmail", "is set but domain is not",
                          "Set domain too, or remove acmeEmail to use the internal certificate")
    if acme_email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", acme_email):
        raise ConfigError("acmeEmail", f"{acme_email!r} is not an e-mail address", "Fix it")
    auth = r.string("auth")
    if auth not in ("ldap", "github"):
        raise ConfigError("auth", f"unknown method {auth!r}", "Use ldap or github")
    base_dn = r.string("ldapBaseDn")
    if not re.match(r"^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$", base_dn):
        raise ConfigError("ldapBaseDn", f"{base_dn!r} is not a dc=...,dc=... DN",
                          "Use a value like dc=physics,dc=example,dc=org")
    groups = _groups(r)
    users = _users(r, groups)
    allowed_groups = tuple(r.strings("allowedGroups"))
    for group in allowed_groups:
        if group not in {g.name for g in groups}:
            raise ConfigError("allowedGroups", f"unknown group {group!r}", "Declare it under `groups`")
    admin_users, blocked = _logins(r, "adminUsers"), _logins(r, "blockedUsers")
    allowed_users = _logins(r, "allowedUsers")
    admins = {u.name for u in users if u.admin} | set(admin_users)
    for name in blocked:
        if name in admins:
            raise ConfigError("blockedUsers", f"{name!r} is also an admin",
                              "Remove the admin flag or the block")
    github = None
    if auth == "github":
        client_id = r.required("githubClientId", "for auth=github")
        secret = r.secret("githubClientSecret")
        if secret is None:
            raise ConfigError("githubClientSecret", "is required for auth=github",
                              "Run `pulumi config set --secret githubClientSecret <secret>`")
        orgs = tuple(r.strings("githubAllowedOrgs"))
        if not (orgs or allowed_users or admin_users):
            raise ConfigError("githubAllowedOrgs", "nobody could log in (no allow rule)",
                              "Set githubAllowedOrgs, allowedUsers or adminUsers")
        github = GithubSettings(client_id, secret, orgs)
    elif r.string("githubClientSecret") is not None:
        r.secret("githubClientSecret")  # refuse a plain-text secret even when unused
    # One definition of a memory size and a CPU amount, shared with the hub (jhc_values). The
    # hub reads 0 as "no limit"; a stack always limits each server, so 0 is refused here.
    memory, cpu = r.string("memLimit"), r.string("cpuLimit")
    try:
        if not memory_bytes(memory):
            raise ValueError("0 would let one server take all of the host's memory")
    except ValueError as err:
        raise ConfigError("memLimit", str(err), "Use a value like 512M, 1.5G or 2G") from None
    try:
        if not cpu_amount(cpu):
            raise ValueError("0 (no limit) would let one server take every core")
    except ValueError as err:
        raise ConfigError("cpuLimit", f"{cpu!r} is not a core count: {err}",
                          "Use a number of cores like 0.5 or 1.5") from None
    cull = r.integer("cullIdleTimeout", 0, 30 * 86400)
    if 0 < cull < 300:
        raise ConfigError("cullIdleTimeout", f"{cull} s would stop servers while people think",
                          "Use 0 (never) or at least 300")
    previous_keys = _previous_crypt_keys(r)
    return ServiceSettings(
        domain=domain, acme_email=acme_email, acme_staging=r.boolean("acmeStaging"),
        auth=auth, ldap_base_dn=base_dn,
        ldap_organisation=r.string("ldapOrganisation"), users=users, groups=groups,
        admin_users=admin_users, allowed_users=allowed_users, allowed_groups=allowed_groups,
        blocked_users=blocked, images=_images(r, groups),
        datasets=_datasets(r, host.data_dir, host.workers is not None),
        mem_limit=memory, cpu_limit=cpu, cull_idle_timeout=cull, github=github,
        backup=_backup(r, host), previous_crypt_keys=previous_keys)


# restic backends by prefix (restic docs, "Preparing a new repository"); a bare path is local.
RESTIC_BACKENDS = ("s3:", "swift:", "b2:", "azure:", "gs:", "rest:", "sftp:", "rclone:")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _backup(r: _Reader, host: HostSettings) -> BackupSettings:
    repository = r.string("backupRepository")
    if repository is not None:
        repository = repository.strip()
        if not (repository.startswith(RESTIC_BACKENDS) or repository.startswith("/")):
            raise ConfigError("backupRepository", f"{repository!r} is not a restic repository",
                              "Use an absolute path or a URL starting with "
                              + ", ".join(RESTIC_BACKENDS))
        if repository.startswith("/"):
            path, data = Path(repository).resolve(), Path(host.data_dir).resolve()
            if path == data or data in path.parents or path in data.parents:
                raise ConfigError("backupRepository", f"{repository} overlaps the data directory "
                                  f"{host.data_dir}: a lost volume would take the backups along",
                                  "Choose a directory outside it (or object storage)")
    env = None
    text = r.string("backupRepositoryEnv")
    if text is not None:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
                isinstance(k, str) and _ENV_NAME.match(k) and isinstance(v, str)
                for k, v in parsed.items()):
            raise ConfigError("backupRepositoryEnv", "is not a JSON object of NAME: \"value\"",
                              'Set it like `pulumi config set --secret backupRepositoryEnv '
                              '\'{"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}\'`')
        r.secret("backupRepositoryEnv")  # refuses a plain-text value
        if repository is None:
            raise ConfigError("backupRepositoryEnv", "is set but backupRepository is not",
                              "Set backupRepository too, or unset backupRepositoryEnv")
        env = pulumi.Output.secret(parsed)
    keep = (r.integer("backupKeepDaily", 0, 3650), r.integer("backupKeepWeekly", 0, 520),
            r.integer("backupKeepMonthly", 0, 1200))
    if not any(keep):
        raise ConfigError("backupKeepDaily", "backupKeepDaily, backupKeepWeekly and "
                          "backupKeepMonthly are all 0", "Keep at least one snapshot, e.g. 7 daily")
    return BackupSettings(
        enabled=r.boolean("backupEnabled"), repository=repository, repository_env=env,
        time=_hhmm(r, "backupTime"), keep_daily=keep[0], keep_weekly=keep[1],
        keep_monthly=keep[2],
        check_every_days=r.integer("backupCheckEveryDays", 0, 365),
        check_read_data_percent=r.integer("backupCheckReadDataPercent", 1, 100))


def _previous_crypt_keys(r: _Reader) -> pulumi.Output[str] | None:
    """hubPreviousCryptKeys, checked as the hub checks JHC_CRYPT_KEY_FILE (jhc_hub.parse_crypt_keys)
    so the hub never refuses at start what preview accepted. Errors never echo a key."""
    raw = r.string("hubPreviousCryptKeys")
    if raw is None:
        return None
    keys = [item.strip() for item in raw.split(";") if item.strip()]
    for index, key in enumerate(keys, 1):
        if re.fullmatch(r"[0-9a-fA-F]{64}", key):
            continue
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            decoded = b""
        if len(decoded) != 32:
            raise ConfigError("hubPreviousCryptKeys", f"key {index} is not 32 bytes hex or base64",
                              "Copy the old key exactly (admin guide, Rotate secrets)")
    secret = r.secret("hubPreviousCryptKeys")
    return secret.apply(lambda _: ";".join(keys)) if keys else None
