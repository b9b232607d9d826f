"""The hub's settings document and typed reading of its variables.

The Pulumi component uploads one JSON object of the JHC_* variables of jhc_variables.py (the
settings document); the hub loads it with :func:`load_document` and reads it through
:class:`Env`, whose every refusal names the variable. Stdlib only (program and hub image).
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Any

if __package__:  # the Pulumi program imports services.hub.jhc_document
    from .jhc_values import normalize_login
    from .jhc_variables import BY_VARIABLE, HubConfigError
else:  # the hub image: the modules lie side by side in /etc/jupyterhub
    from jhc_values import normalize_login
    from jhc_variables import BY_VARIABLE, HubConfigError


#: Where the hub reads its settings document; the Pulumi component uploads it there.
SETTINGS_FILE = "/etc/jupyterhub/jhc-settings.json"
SETTINGS_FILE_VAR = "JHC_SETTINGS_FILE"  # another path (tests, a hub run by hand)


def settings_document(variables: Mapping[str, str]) -> str:
    """The settings document: one JSON object {variable: value} of the table's variables.

    One file instead of ~40 container variables; it names secret files, never holds secrets.
    """
    unknown = sorted(set(variables) - set(BY_VARIABLE))
    if unknown:
        raise HubConfigError(unknown[0], "is not a variable of jhc_variables.VARIABLES")
    return json.dumps(dict(sorted(variables.items())), indent=1) + "\n"


def load_document(environ: Mapping[str, str]) -> dict[str, str]:
    """The hub's variables from its settings document (path: $JHC_SETTINGS_FILE or
    :data:`SETTINGS_FILE`). A JHC_* variable in the process environment is refused: there is
    one source of settings, so nothing set elsewhere is silently ignored."""
    stray = sorted(k for k in environ if k in BY_VARIABLE)
    if stray:
        raise HubConfigError(stray[0], "is set in the environment; put it in the settings "
                                       f"document ({SETTINGS_FILE_VAR})")
    path = environ.get(SETTINGS_FILE_VAR) or SETTINGS_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as err:
        raise HubConfigError(SETTINGS_FILE_VAR, f"cannot read {path!r}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise HubConfigError(SETTINGS_FILE_VAR, f"{path!r} is not JSON ({err.msg})") from None
    if not isinstance(doc, dict):
        raise HubConfigError(SETTINGS_FILE_VAR, f"{path!r} must hold a JSON object")
    for key, value in doc.items():
        if key not in BY_VARIABLE:
            raise HubConfigError(key, f"in {path!r} is not a variable of the hub (docs/hub.md)")
        if not isinstance(value, str):
            raise HubConfigError(key, f"in {path!r} must be a string, got {value!r}")
    return doc


# --------------------------------------------------------------------------------------------
# reading the environment


class Env:
    """Typed, validating accessors over an environment mapping (``os.environ`` in the hub).

    Every failure raises :class:`HubConfigError` naming the variable. Only variables listed in
    :data:`VARIABLES` may be read, so the docs table cannot miss one.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset or empty (empty means "use the default")."""
        if name not in BY_VARIABLE:
            raise KeyError(f"{name} is not declared in jhc_settings.VARIABLES")
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def str(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def required(self, name: str, why: str = "") -> str:
        value = self.raw(name)
        if value is None:
            raise HubConfigError(name, "is required" + (f" ({why})" if why else "") + " but unset")
        return value

    def int(self, name: str, default: int, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise HubConfigError(name, f"{value!r} is not an integer") from None
        if not minimum <= number <= maximum:
            raise HubConfigError(name, f"{number} is outside {minimum}..{maximum}")
        return number

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        value = self.str(name, default).lower()
        allowed = tuple(choices)
        if value not in allowed:
            raise HubConfigError(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not any(value.startswith(f"{scheme}://") for scheme in schemes) or value.endswith("//"):
            raise HubConfigError(name, f"{value!r} is not a {'/'.join(schemes)} URL")
        return value.rstrip("/")

    def host(self, name: str, default: str) -> str:
        value = self.str(name, default)
        if not re.fullmatch(r"[A-Za-z0-9.-]+", value):
            raise HubConfigError(name, f"{value!r} is not a host name")
        return value

    def abspath(self, name: str, default: str | None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not value.startswith("/") or "{" in value or "}" in value or ":" in value:
            # braces would be treated as templates by DockerSpawner, ":" breaks docker binds
            raise HubConfigError(name, f"{value!r} must be an absolute path without {{}}:")
        return os.path.normpath(value)

    def usernames(self, name: str) -> frozenset[str]:
        """A comma-separated list of login names, normalised (jhc_values.normalize_login)."""
        names = set()
        for item in (self.raw(name) or "").split(","):
            if item.strip():
                try:
                    names.add(normalize_login(item))
                except ValueError as err:
                    raise HubConfigError(name, str(err)) from None
        return frozenset(names)

    def csv(self, name: str) -> list[str]:
        return [item.strip() for item in (self.raw(name) or "").split(",") if item.strip()]

    def json(self, name: str, default: Any) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise HubConfigError(name, f"is not valid JSON ({err.msg} at {err.pos})") from None

    def secret_file(self, name: str, why: str, read: bool) -> str | None:
        """The content of the secret file named by variable ``name`` (required); None when
        ``read`` is False (the program at preview: the path is checked, not the file)."""
        path = self.required(name, why)
        return read_secret_file(path, name) if read else None


def parse_crypt_keys(text: str, var: str = "JHC_CRYPT_KEY_FILE") -> list[bytes]:
    """auth_state encryption keys: ";"-separated, each 32 bytes hex (openssl rand -hex 32)
    or url-safe base64; the first encrypts, the others still decrypt (key rotation)."""
    keys: list[bytes] = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        key: bytes | None = None
        if re.fullmatch(r"[0-9a-fA-F]{64}", item):
            key = bytes.fromhex(item)
        else:
            try:
                key = base64.urlsafe_b64decode(item.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                key = None
        if key is None or len(key) != 32:
            raise HubConfigError(var, "each key must be 32 bytes, hex or base64 encoded")
        keys.append(key)
    if not keys:
        raise HubConfigError(var, "holds no key")
    return keys


def read_secret_file(path: str, var: str) -> str:
    """Read a secret from a file that only its owner can read (mode 600 or stricter).

    Why files: environment variables leak into ``docker inspect``, child processes and crash
    reports; a file mounted read-only into the hub container does not. The mode check refuses
    a file that other accounts could read, as ssh does for keys.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise HubConfigError(var, f"cannot read secret file {path!r}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise HubConfigError(var, f"secret file {path!r} is not a regular file")
    if st.st_mode & 0o077:
        raise HubConfigError(
            var, f"secret file {path!r} has mode {stat.S_IMODE(st.st_mode):o}; use 600"
        )
    with open(path, encoding="utf-8") as handle:
        value = handle.read().strip()
    if not value:
        raise HubConfigError(var, f"secret file {path!r} is empty")
    return value
