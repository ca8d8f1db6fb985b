"""Reading Promtail's YAML sections with the field's path in every error.

Each module reads its own section through `Section`: a typed `get` per known key, and `done()`
refuses the keys nobody read, so a typo fails at start-up as `clients[0].batchwiat: unknown field`.
"""

from __future__ import annotations

from typing import Any

from lokiarrow.units import parse_bytes, parse_duration_ns


class ConfigError(ValueError):
    """An invalid agent configuration: `path: problem`."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path


class Section:
    """One YAML mapping at `path` (e.g. `scrape_configs[2].pipeline_stages[0].json`)."""

    def __init__(self, value: Any, path: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be a mapping, not {type(value).__name__}")
        self.value = value
        self.path = path
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self.value.get(key, default)

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool | dict | list):
            raise ConfigError(self.at(key), f"must be a string, not {type(value).__name__}")
        return str(value)

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(key), f"must be an integer, not {value!r}")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.at(key), f"must be true or false, not {value!r}")
        return value

    def duration_ns(self, key: str, default: int | None = None) -> int | None:
        """A Go/Prometheus duration (`1s`, `500ms`, `1h30m`)."""
        value = self.raw(key)
        if value is None:
            return default
        try:
            return parse_duration_ns(str(value))
        except ValueError as exc:
            raise ConfigError(self.at(key), f"invalid duration {value!r}: {exc}") from None

    def size(self, key: str, default: int | None = None) -> int | None:
        """A byte size (`1MB`, `512KiB`, or a plain number)."""
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_bytes(str(value))
        except ValueError as exc:
            raise ConfigError(self.at(key), f"invalid size {value!r}: {exc}") from None

    def section(self, key: str) -> Section:
        return Section(self.raw(key), self.at(key))

    def sections(self, key: str) -> list[Section]:
        """A list of mappings (`scrape_configs`, `relabel_configs`, …)."""
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(self.at(key), f"must be a list, not {type(value).__name__}")
        return [Section(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise ConfigError(self.at(key), "must be a list of strings")
        return [str(v) for v in value]

    def mapping(self, key: str) -> dict[str, str]:
        """A mapping of strings (`labels`, `external_labels`); null values read as ""."""
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(self.at(key), f"must be a mapping, not {type(value).__name__}")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def done(self) -> None:
        """Refuse the keys no reader asked for."""
        unknown = sorted(set(self.value) - self._read, key=str)   # YAML keys may be null, numbers, ...
        if unknown:
            raise ConfigError(self.at(str(unknown[0])), "unknown field")
