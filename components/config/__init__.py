"""Stack config → typed, frozen settings, validated before any resource is declared.

The loader is pure (it takes the raw key → string mapping Pulumi hands the program) so every refusal
can be tested without a Pulumi engine. Every error names the config key and says what to do.
Reading is in reader.py, the host layer's keys in host.py, the service layer's in service.py, the
resulting dataclasses in settings.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pulumi

from components.config.host import _host, is_graviton
from components.config.reader import _check_unknown, _Reader
from components.config.service import _service
from components.config.settings import (
    CLOUDS,
    DATA_DIR,
    PROJECT,
    AwsSettings,
    BackupSettings,
    ConfigError,
    Dataset,
    DataSnapshots,
    GithubSettings,
    HostSettings,
    LocalSettings,
    NotebookImage,
    OpenStackSettings,
    ServiceSettings,
    Settings,
    StackNameError,
    WorkerSettings,
)

__all__ = ["CLOUDS", "DATA_DIR", "PROJECT", "AwsSettings", "BackupSettings", "ConfigError",
           "DataSnapshots", "Dataset", "GithubSettings", "HostSettings", "LocalSettings",
           "NotebookImage", "OpenStackSettings", "ServiceSettings", "Settings", "StackNameError",
           "WorkerSettings", "is_graviton", "load_settings", "raw_project_config"]

def load_settings(raw: Mapping[str, str], stack: str,
                  secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Validates the project's raw config (key without namespace → Pulumi's string form).

    secret_keys names the keys that were set with --secret (so their values may hold secrets).
    """
    _check_unknown(raw)
    if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", stack):
        raise StackNameError(stack)
    r = _Reader(raw, secret_keys)
    host = _host(r, stack)
    return Settings(stack=stack, host=host, service=_service(r, host))


def raw_project_config() -> tuple[dict[str, str], frozenset[str]]:
    """The running program's config for this project (keys without the namespace) and which of
    them are secret."""
    prefix = f"{PROJECT}:"
    env = pulumi.runtime.config.get_config_env()
    merged = {**env, **pulumi.runtime.config.CONFIG.get()}
    raw = {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
    return raw, frozenset(k for k in raw if pulumi.runtime.config.is_config_secret(prefix + k))
