"""The clean room's server settings (one typed object) and its secrets kept outside the database.

Every limit the server enforces on a request is a field of :class:`Settings`, with its default;
``synthroom serve`` maps one flag to each (docs/security.md, "Every limit and its default").
Secrets (the admin key, the audit key) are files in the data folder, created once with mode
0600, or environment variables: never rows of the metadata database, so whoever can write the
database cannot forge what they protect.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .limits import JobLimits

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
    allow_training_scripts: bool = Field(True, description="Members may run training scripts (in the bubblewrap "
                                         "sandbox; refused with the reason when it cannot run on the server).")
    script_time_limit: float = Field(600.0, gt=0, description="Seconds a training script may run.")
    script_memory_mib: int = Field(4096, ge=256, description="Address space of a training script, MiB.")
    script_output_mib: int = Field(100, ge=1, description="Size of a training script's output folder, MiB.")
    job_seconds: float = Field(JOB.seconds, gt=0, description="Wall-clock seconds one job may run (resource_limit beyond).")
    job_memory_mib: int = Field(JOB.memory_bytes // MIB, ge=256, description="Address space of one job's process, MiB.")
    job_threads: int = Field(JOB.threads, ge=1, description="Threads of one job's DuckDB, BLAS and XLA.")
    job_temp_disk_mib: int = Field(JOB.temp_bytes // MIB, ge=1, description="Temporary disk one job may fill, MiB.")


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
