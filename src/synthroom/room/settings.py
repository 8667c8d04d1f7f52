"""The clean room's server settings (one typed object) and its secrets kept outside the database.

Every limit the server enforces on a request is a field of :class:`Settings`, with its default.
:func:`load_settings` reads them, in rising precedence, from the defaults, a TOML config file
(``--config`` or ``$SYNTHROOM_CONFIG``), ``SYNTHROOM_<FIELD>`` environment variables and the
command line of ``synthroom serve`` / ``synthroom worker`` (one flag per field). The table in
docs/cleanroom.md ("Server settings") is :func:`settings_table`'s output (a test keeps the two
equal).
Secrets (the admin key, the audit key) are files in the data folder, created once with mode
0600, or environment variables: never rows of the metadata database, so whoever can write the
database cannot forge what they protect.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError
from .limits import JobLimits

ENV_PREFIX = "SYNTHROOM_"
CONFIG_ENV = "SYNTHROOM_CONFIG"

MIB = 1024 * 1024
JOB = JobLimits()  # the per-job limits' defaults


class Settings(BaseModel):
    """Limits and switches of one clean-room server; validated on creation and on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_body_bytes: int = Field(MIB, ge=1024, description="Largest request body accepted (413 beyond).")
    page_size: int = Field(100, ge=1, description="Items per page of a list endpoint when the caller names no limit.")
    max_page_size: int = Field(1000, ge=1, description="Largest page a caller may ask for (422 beyond).")
    max_collaboration_members: int = Field(100, ge=2, description="Members one collaboration may list (422 beyond).")
    max_rows: int = Field(10_000_000, ge=1, description="Largest `rows` a template may ask for (422 beyond).")
    allow_training_scripts: bool = Field(
        True,
        description="Members may run training scripts (in the bubblewrap "
        "sandbox; refused with the reason when it cannot run on the server).",
    )
    script_time_limit: float = Field(600.0, gt=0, description="Seconds a training script may run.")
    script_memory_mib: int = Field(4096, ge=256, description="Address space of a training script, MiB.")
    script_output_mib: int = Field(100, ge=1, description="Size of a training script's output folder, MiB.")
    job_seconds: float = Field(
        JOB.seconds, gt=0, description="Wall-clock seconds one job may run (resource_limit beyond)."
    )
    job_memory_mib: int = Field(JOB.memory_bytes // MIB, ge=256, description="Address space of one job's process, MiB.")
    job_threads: int = Field(JOB.threads, ge=1, description="Threads of one job's DuckDB, BLAS and XLA.")
    job_temp_disk_mib: int = Field(JOB.temp_bytes // MIB, ge=1, description="Temporary disk one job may fill, MiB.")
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="Where templates run and rows are counted: duckdb (the job's process) or spark "
        "(a collaboration may choose its own; docs/engines.md).",
    )
    spark_master: Optional[str] = Field(
        None, description="The Spark cluster jobs on Spark use (default: a local session in the job's process)."
    )
    spark_snapshot_root: Optional[str] = Field(
        None,
        description="Cluster folder (URI: hdfs://, s3a://, file://) where the room writes its snapshots of "
        "Spark tables and cluster paths (default: spark-data in the artifacts folder; no member's grant may "
        "reach it).",
    )

    @field_validator("spark_snapshot_root")
    @classmethod
    def _plain_cluster_folder(cls, value: Optional[str]) -> Optional[str]:
        """A snapshot root is a plain cluster URI (as a member's grant is), stored normalised."""
        from .grants import parse_cluster_path

        if value is None:
            return None
        try:
            return str(parse_cluster_path(value, "spark_snapshot_root", whole=True))
        except InputError as exc:
            raise ValueError(str(exc)) from None


def env_var(field: str) -> str:
    """The environment variable of a setting: ``max_rows`` -> ``SYNTHROOM_MAX_ROWS``."""
    return ENV_PREFIX + field.upper()


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_settings(config: str | Path | None = None, environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
    """The settings from, in rising precedence: the defaults, the TOML file ``config`` (else
    ``$SYNTHROOM_CONFIG``; top-level keys or a ``[server]`` table, named as the fields), the
    ``SYNTHROOM_<FIELD>`` variables of ``environ`` (default: the process's) and ``given`` (the
    command line's flags; None is not given). A bad value or an unknown key raises
    :class:`~synthroom.errors.InputError` naming where it came from."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    path = config or environ.get(CONFIG_ENV)
    if path:
        for name, value in _config_file(Path(path)).items():
            values[name], source[name] = value, f"{path}: {name}"
    for name in Settings.model_fields:
        if environ.get(env_var(name)) is not None:
            values[name], source[name] = environ[env_var(name)], env_var(name)
    for name, value in given.items():
        if value is not None:
            values[name], source[name] = value, flag(name)
    try:
        return Settings(**values)
    except ValidationError as exc:
        faults = [f"{source.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
        raise InputError("; ".join(faults)) from None


def _config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the config file {path} is not valid TOML: {exc}") from None
    data = data.get("server", data)
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise InputError(f"{path}: unknown setting {unknown[0]!r} (the settings: {', '.join(Settings.model_fields)})")
    return data


def settings_table() -> str:
    """The Markdown table of every setting (docs/cleanroom.md, "Server settings")."""
    lines = [
        "| setting (config file key) | environment variable | flag | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"| `{name}` | `{env_var(name)}` | `{flag(name)}` | `{field.default!r}` | {field.description} |")
    return "\n".join(lines)


def server_secret(path: Path, env: str | None = None) -> str:
    """``$env`` when set, else the secret kept in ``path``: created on first use (256 random bits),
    mode 0600 from the start, and published by a hard link (two servers starting at once agree
    on one secret, and neither reads a half-written file)."""
    if env and os.environ.get(env):
        return os.environ[env]
    path = Path(path)
    if not path.exists():
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


if __name__ == "__main__":
    print(settings_table())
