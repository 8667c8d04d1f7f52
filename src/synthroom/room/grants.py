"""What the operator granted each member to configure: local folders, cluster paths, Spark tables.

A member's grant (``data_roots``, set only with the admin key) lists any of:

* a local folder (``/srv/data/alice``): CSV, Parquet and DuckDB sources below it, opened
  without following symlinks (:func:`synthroom.sql.open_below`);
* a cluster path prefix, as a URI (``hdfs://namenode:8020/data/alice``, ``s3a://bucket/alice``,
  ``file:///mnt/shared/alice``): Parquet or CSV read by Spark below it (``spark_parquet``,
  ``spark_csv``);
* a Spark table, ``spark-table:db.name``, or every table of one database, ``spark-table:db.*``
  (``spark_table``).

Members are adversaries, so a cluster location is compared as parsed parts, never as text with
``startswith``: the scheme and host (lower case) must be equal and the grant's path segments a
strict prefix of the source's (``s3a://b/prefix2`` is not under ``s3a://b/prefix``). Anything
that could make Spark or Hadoop read elsewhere than the text says is refused outright: user
info, a query or fragment, ``%`` escapes, empty, ``.`` and ``..`` segments, and every character
outside ``[A-Za-z0-9._=+-]`` (Hadoop expands ``* ? [ ] { }`` as globs). A table name is exactly
``db.name`` of plain identifiers: no backquotes, no catalog part, no unqualified name (a
temporary view), never ``global_temp``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError
from .errors import Forbidden

TABLE_GRANT = "spark-table:"
CLUSTER_SCHEMES = ("file", "hdfs", "s3a", "s3", "gs", "abfs", "abfss")
_SEGMENT = re.compile(r"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]*")
_HOST = re.compile(r"[a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# global_temp holds global temporary views; Spark 4 also names temporary views and session
# variables as system.session.<name>: none of these is a member's table.
_DENIED_DATABASES = frozenset({"global_temp", "session", "system"})


@dataclass(frozen=True)
class ClusterPath:
    """A cluster location, normalised: lower-case scheme and host, and its path segments."""

    scheme: str
    host: str
    segments: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}/{'/'.join(self.segments)}".rstrip("/")

    def covers(self, other: ClusterPath) -> bool:
        """Whether ``other`` lies strictly below this location (same scheme and host)."""
        return (
            (self.scheme, self.host) == (other.scheme, other.host)
            and len(other.segments) > len(self.segments)
            and other.segments[: len(self.segments)] == self.segments
        )

    def overlaps(self, other: ClusterPath) -> bool:
        """Whether either location is the other or lies below it."""
        return self == other or self.covers(other) or other.covers(self)

    def local_path(self) -> Path | None:
        """The folder or file on this machine for a ``file://`` location (else None)."""
        return Path("/", *self.segments) if self.scheme == "file" else None


def is_cluster_uri(text: str) -> bool:
    return isinstance(text, str) and "://" in text


def parse_cluster_path(text: object, what: str = "cluster path", *, whole: bool = False) -> ClusterPath:
    """``text`` as a :class:`ClusterPath`; :class:`InputError` for anything not plainly a path.
    ``whole``: a grant may be a whole bucket or host (no folder; never all of ``file://``)."""
    if not isinstance(text, str) or not text.isprintable() or len(text) > 2000:
        raise InputError(f"{what} {text!r} must be a URI such as hdfs://host/folder or s3a://bucket/folder")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in CLUSTER_SCHEMES:
        raise InputError(f"{what} {text!r}: the scheme must be one of {', '.join(CLUSTER_SCHEMES)}")
    host = parts.netloc.lower()
    if parts.query or parts.fragment or "?" in text or "#" in text or "@" in parts.netloc or "%" in text:
        raise InputError(f"{what} {text!r} must not hold user info, a query, a fragment or % escapes")
    if (scheme == "file") != (host == "") or (host and not _HOST.fullmatch(host)):
        raise InputError(f"{what} {text!r}: a file:// URI has no host; other schemes need a plain host (or bucket)")
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    segments = tuple(path.split("/")[1:]) if path.startswith("/") else ((path,) if path else ())
    if not all(_SEGMENT.fullmatch(s) for s in segments) or not (segments or (whole and host)):
        raise InputError(
            f"{what} {text!r}: every folder name must be plain (letters, digits, . _ = + -; no empty, . or .. "
            "part, no glob character)"
        )
    return ClusterPath(scheme, host, segments)


def parse_table_name(text: object, what: str = "Spark table") -> str:
    """``db.name`` in lower case; :class:`InputError` for any other form of name."""
    name = text.lower() if isinstance(text, str) else ""
    parts = name.split(".")
    if len(parts) != 2 or not all(_IDENTIFIER.fullmatch(p) and len(p) <= 100 for p in parts):
        raise InputError(f"{what} {text!r} must be database.table, both plain identifiers (letters, digits, _)")
    if parts[0] in _DENIED_DATABASES:
        raise InputError(f"{what} {text!r}: database {parts[0]!r} holds temporary views or variables, not tables")
    return name


def normalise_grant(entry: object) -> str:
    """A grant entry as stored: a resolved local folder, a normalised URI, or ``spark-table:``."""
    if not isinstance(entry, str) or not entry or "\x00" in entry:
        raise InputError(f"data root {entry!r} must be a folder, a cluster URI or spark-table:db.name")
    if entry.startswith(TABLE_GRANT):
        name = entry[len(TABLE_GRANT) :]
        if name.endswith(".*"):
            return TABLE_GRANT + parse_table_name(name[:-2] + ".x", "data root")[:-2] + ".*"
        return TABLE_GRANT + parse_table_name(name, "data root")
    if is_cluster_uri(entry):
        return str(parse_cluster_path(entry, "data root", whole=True))
    return str(Path(entry).resolve())


def local_roots(roots: list[str]) -> list[str]:
    """The grant's local folders."""
    return [r for r in roots if not r.startswith(TABLE_GRANT) and not is_cluster_uri(r)]


def _cluster_roots(roots: list[str]) -> list[ClusterPath]:
    found = [parse_cluster_path(r, "data root", whole=True) for r in roots if is_cluster_uri(r)]
    return found + [ClusterPath("file", "", Path(r).parts[1:]) for r in local_roots(roots) if Path(r).parts[1:]]


def granted_cluster_path(source: object, roots: list[str], member: str) -> tuple[ClusterPath, ClusterPath]:
    """The source's location and the grant that covers it; :class:`Forbidden` when none does.

    Only cluster grants count: a local folder grant is for the room's own file reader, which
    refuses symlinks; Spark would follow them."""
    path = parse_cluster_path(source, "data source")
    for root in (parse_cluster_path(r, "data root", whole=True) for r in roots if is_cluster_uri(r)):
        if root.covers(path):
            return path, root
    raise Forbidden(f"{source!r} is outside {member!r}'s cluster data paths")


def granted_table(name: object, roots: list[str], member: str) -> str:
    """The table's canonical name if a ``spark-table:`` grant names it or its database."""
    table = parse_table_name(name, "data source")
    database = table.split(".")[0]
    if TABLE_GRANT + table in roots or f"{TABLE_GRANT}{database}.*" in roots:
        return table
    raise Forbidden(f"Spark table {name!r} is not among {member!r}'s granted tables")


def check_apart(roots: list[str], own: dict[str, ClusterPath]) -> None:
    """A member's grant must not reach the room's own storage (``own``, by what it is: the
    artifacts folder with every member's snapshots and results, the Spark snapshot folder), nor
    hold it: a source there would be another member's snapshot."""
    for root in _cluster_roots(roots):
        for what, folder in own.items():
            if root.overlaps(folder):
                raise InputError(f"data root {str(root)!r} overlaps the room's {what}")


def no_symlinks_below(root: ClusterPath, path: ClusterPath, shown: str) -> None:
    """For a ``file://`` source: no component below the grant, and no entry of the folder, is a
    symlink (Spark would follow it out of the grant). Checked before and after Spark reads it;
    a swap in between is the residual race (docs/engines.md)."""
    base, target = root.local_path(), path.local_path()
    if base is None or target is None:
        return
    current = base
    for part in path.segments[len(root.segments) :]:
        current = current / part
        if current.is_symlink():
            raise InputError(f"data source {shown!r} is or goes through a symbolic link; give the real path")
    if target.is_dir():
        for folder, dirs, files in os.walk(target, followlinks=False):
            if any(os.path.islink(os.path.join(folder, n)) for n in dirs + files):
                raise InputError(f"data source {shown!r} holds a symbolic link; give a folder without any")


__all__ = [
    "CLUSTER_SCHEMES",
    "TABLE_GRANT",
    "ClusterPath",
    "check_apart",
    "granted_cluster_path",
    "granted_table",
    "local_roots",
    "no_symlinks_below",
    "normalise_grant",
    "parse_cluster_path",
    "parse_table_name",
]
