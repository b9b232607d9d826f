"""Reading raw stack config: types as the key table declares them, unknown keys, secrets."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi

from components.config.keys import BY_NAME, Key
from components.config.settings import ConfigError


class _Reader:
    """Typed access to the raw config, with defaults from the key table."""

    def __init__(self, raw: Mapping[str, str], secret_keys: frozenset[str]) -> None:
        self.raw = raw
        self.secret_keys = secret_keys

    def secret(self, name: str) -> pulumi.Output[str] | None:
        """A secret value, refused when it was stored in plain text in the stack file."""
        value = self.string(name)
        if value is None:
            return None
        if name not in self.secret_keys:
            raise ConfigError(name, "is stored in plain text in the stack file",
                              f"Run `pulumi config set --secret {name} <value>`")
        return pulumi.Output.secret(value)

    def objects(self, name: str, fields: set[str]) -> list[dict[str, Any]]:
        items = self._value(name)
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConfigError(name, f"item {index} is not an object",
                                  "Write each item as a mapping (see the README)")
            unknown = set(item) - fields
            if unknown:
                raise ConfigError(f"{name}[{index}].{sorted(unknown)[0]}", "is not a known field",
                                  f"Use only: {', '.join(sorted(fields))}")
        return items

    def _value(self, name: str) -> Any:
        key: Key = BY_NAME[name]
        if name not in self.raw:
            return key.default
        text = self.raw[name]
        if key.type == "string":
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        expected = {"integer": int, "boolean": bool, "array": list, "objects": list}[key.type]
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(name, f"expected {_article(key.type)}, got {text!r}",
                              f"Set it with `pulumi config set {name} <{key.type}>`"
                              + (" --path" if key.type in ("array", "objects") else ""))
        return value

    def string(self, name: str) -> str | None:
        """None when unset; an empty string counts as unset (it is Pulumi.yaml's default)."""
        value = self._value(name)
        return value if value and value.strip() else None

    def required(self, name: str, why: str) -> str:
        value = self.string(name)
        if value is None:
            raise ConfigError(name, f"is required {why}", f"Run `pulumi config set {name} <value>`")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self._value(name)
        if not low <= value <= high:
            raise ConfigError(name, f"{value} is out of range {low}-{high}",
                              f"Choose a value between {low} and {high}")
        return value

    def boolean(self, name: str) -> bool:
        return self._value(name)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._value(name)
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(name, "must be a list of strings", "Quote every item")
        return tuple(value)


def _article(type_name: str) -> str:
    return {"integer": "an integer", "boolean": "true or false", "array": "a list",
            "objects": "a list of objects", "string": "a string"}[type_name]


def _check_unknown(raw: Mapping[str, str]) -> None:
    for name in raw:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1)
            fix = (f"Did you mean '{close[0]}'? Rename it" if close
                   else "Remove it (see the README's config reference)")
            raise ConfigError(name, "is not a setting of this project", fix)


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _hhmm(r: _Reader, name: str) -> str:
    value = r.string(name) or ""
    if not _HHMM.match(value):
        raise ConfigError(name, f"{value!r} is not a time of day", "Use HH:MM in UTC, e.g. 02:30")
    return value
