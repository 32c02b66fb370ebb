"""Where Koda keeps its files: KODA_HOME if set, else the platform's user data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dir() -> Path:
    override = os.environ.get("KODA_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "koda"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "koda"


def database_path() -> Path:
    return data_dir() / "koda.db"


def config_dir() -> Path:
    """Settings and stored keys: KODA_HOME if set, else XDG_CONFIG_HOME/koda (~/.config/koda)."""
    override = os.environ.get("KODA_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        return data_dir()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "koda"


def koda_dirs() -> list[Path]:
    """Every folder where Koda may keep its database or keys: the configured ones and the
    platform defaults (keys stored before KODA_HOME was set stay where they were)."""
    home = Path.home()
    found = [data_dir(), config_dir()]
    if sys.platform == "darwin":
        found.append(home / "Library" / "Application Support" / "koda")
    found += [home / ".local" / "share" / "koda", home / ".config" / "koda"]
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        base = os.environ.get(variable)
        if base and Path(base).is_absolute():
            found.append(Path(base) / "koda")
    return list(dict.fromkeys(found))
