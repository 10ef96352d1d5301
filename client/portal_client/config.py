"""Where the portal's address and token come from: the argument, else the environment
(`PORTAL_URL`, `PORTAL_TOKEN`), else `$XDG_CONFIG_HOME/portal/config.toml` (by default
`~/.config/portal/config.toml`) with the keys `url` and `token`."""

import os
import tomllib
from pathlib import Path

from portal_client.errors import PortalError


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "portal" / "config.toml"


def read_config(path: Path | None = None) -> dict:
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise PortalError("config_invalid", f"{path}: {exc}") from None


def resolve(name: str, given: str | None) -> str | None:
    """`name` ("url" or "token") from the argument, the environment or the file, in that order."""
    if given:
        return given
    if value := os.environ.get(f"PORTAL_{name.upper()}"):
        return value
    value = read_config().get(name)
    return str(value) if value else None
