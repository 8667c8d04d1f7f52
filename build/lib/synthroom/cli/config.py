"""The client's config file: the server URL and API key ``synthroom room login`` stores, so a
key is not pasted into every command.

The file is ``$SYNTHROOM_CONFIG``, else ``$XDG_CONFIG_HOME/synthroom/room.json`` (default
``~/.config/synthroom/room.json``), written with mode 0600 in a folder of mode 0700 (created that
way, never widened afterwards). Like ssh with its keys, a file that group or others may read is
refused: its key may have been read. Precedence, highest first: ``--server``/``--key``, then
``$SYNTHROOM_SERVER``/``$SYNTHROOM_API_KEY``, then this file, then the default server.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..errors import InputError

ENV = "SYNTHROOM_CONFIG"


def config_path() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "synthroom" / "room.json"


def load_config(path: Path | None = None) -> dict[str, str]:
    """The stored ``server`` and ``key`` ({} when there is no file); InputError when the file
    is readable by others or not a JSON object."""
    path = path or config_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"{path} may be read by other users (mode {stat.filemode(mode)}): its key may have leaked; "
            f"run `chmod 600 {path}` if it did not, else `synthroom room login` with a new key"
        )
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable JSON config ({exc}); remove it and run `synthroom room login`"
        ) from None
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a JSON object; remove it and run `synthroom room login`")
    return {k: str(v) for k, v in value.items() if k in ("server", "key") and v}


def save_config(values: dict[str, str], path: Path | None = None) -> Path:
    """Write ``values`` (``server``, ``key``) atomically, mode 0600 from the start."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
        handle.write("\n")
    os.chmod(draft, 0o600)
    os.replace(draft, path)
    return path


def forget_key(path: Path | None = None) -> Path | None:
    """Remove the stored key (the server URL stays); the file's path, or None if there was none."""
    path = path or config_path()
    values = load_config(path)
    if not values:
        return None
    values.pop("key", None)
    return save_config(values, path)
