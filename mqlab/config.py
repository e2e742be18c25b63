"""The lab's settings on the host: ``.env``, optionally ``images/offline.env``, then the environment.

Compose reads the same files with the same precedence (the process environment
wins over env files, and a later env file wins over an earlier one), so what the
host sees here is what the containers get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from .errors import UsageError

ENV_FILE = ".env"
OFFLINE_ENV_FILE = "images/offline.env"
TRUE = {"1", "true", "yes", "on"}


def parse_env_file(path: Path) -> dict[str, str]:
    """Read an env file the way Docker Compose does (python-dotenv's reader): ``export``
    prefixes, single and double quotes, inline ``# comments`` and ``${VAR}`` / ``${VAR:-default}``
    expansion. A line that cannot be read is a one-line UsageError naming it."""
    with path.open(encoding="utf-8") as fh:
        for binding in parse_stream(fh):
            if binding.error or (binding.key is not None and binding.value is None):
                line = binding.original.string.strip()
                raise UsageError(f"{path.name}:{binding.original.line}: expected KEY=VALUE, got {line!r}")
    return {key: value or "" for key, value in dotenv_values(path, interpolate=True).items()}


@dataclass(frozen=True)
class LabConfig:
    root: Path
    offline: bool
    values: Mapping[str, str]

    @property
    def env_files(self) -> list[Path]:
        files = [self.root / ENV_FILE]
        if self.offline:
            files.append(self.root / OFFLINE_ENV_FILE)
        return files

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int = 1 << 31) -> int:
        """An integer setting; a value that is not a number is a one-line UsageError."""
        raw = self.values.get(key)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"{key}={raw!r} is not a number (set in .env or the environment)") from None
        if not minimum <= value <= maximum:
            raise UsageError(f"{key}={value} is out of range {minimum}..{maximum}")
        return value

    @property
    def ledger_dir(self) -> Path:
        return self.root / ".mqlab" / "ledger"

    @property
    def events_file(self) -> Path:
        """What the lab did to its stacks, and when (:mod:`mqlab.events`)."""
        return self.root / ".mqlab" / "events.jsonl"


def offline_default(environ: Mapping[str, str] | None = None) -> bool:
    """``MQLAB_OFFLINE=1`` makes the images built from packages the default."""
    environ = os.environ if environ is None else environ
    return environ.get("MQLAB_OFFLINE", "").strip().lower() in TRUE


def load(root: Path, offline: bool, environ: Mapping[str, str] | None = None) -> LabConfig:
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    files = [root / ENV_FILE] + ([root / OFFLINE_ENV_FILE] if offline else [])
    for path in files:
        if not path.exists():
            raise UsageError(f"{path} is missing: run from a checkout of the lab")
        values.update(parse_env_file(path))
    for key in list(values):
        if key in environ:
            values[key] = environ[key]
    return LabConfig(root=root, offline=offline, values=values)
