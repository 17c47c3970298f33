"""Where a job's log lines live in the object store, and how they are read back.

A job's lines are JSON objects, one a line, in chunks under its tenant's prefix:
``tenants/<tenant>/jobs/<job>/logs/<seq>-<attempt>.jsonl``. ``seq`` grows across the whole job
(every attempt and step: a two-step job's second step counts its attempts from 1 again), so the
chunks' order is the lines' order, and the keys' order too: a reader lists only the chunks from
its cursor on (S3's ``start-after``). The last chunk an attempt's worker writes ends in
``-end.jsonl`` (how a follower knows no line of that attempt is still to come). A cursor
(``since``) is ``<seq>.<lines>``: the lines after the first ``lines`` of chunk ``seq``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.core.errors import InfraError, UserError
from app.core.storage import Store, _infra

CHUNK_NAME = re.compile(r"^(?P<seq>\d{10})-(?P<attempt>\d{4,6})(?P<end>-end)?\.jsonl$")
CURSOR = re.compile(r"^(?P<seq>\d{1,10})\.(?P<lines>\d{1,9})$")


def logs_prefix(tenant: str, job_id: str) -> str:
    """The folder of one job's log chunks (beside its manifest, ``tenants/<t>/jobs/<job>.json``)."""
    return f"tenants/{tenant}/jobs/{job_id}/logs/"


def chunk_key(tenant: str, job_id: str, attempt: int, seq: int, *, last: bool = False) -> str:
    return f"{logs_prefix(tenant, job_id)}{seq:010d}-{attempt:04d}{'-end' if last else ''}.jsonl"


def is_log_chunk(key: str) -> bool:
    """Whether ``key`` is a job's log chunk (``tenants/<t>/jobs/<job>/logs/<name>``)."""
    parts = key.split("/")
    return len(parts) == 6 and parts[0] == "tenants" and parts[2] == "jobs" and parts[4] == "logs"


@dataclass(frozen=True, order=True)
class Chunk:
    """One stored chunk: its place in the job's log, where it is and how big."""

    seq: int
    attempt: int
    last: bool
    key: str
    size: int


@dataclass(frozen=True)
class Cursor:
    """The lines after the first ``lines`` of chunk ``seq`` (and every later chunk)."""

    seq: int
    lines: int

    def __str__(self) -> str:
        return f"{self.seq}.{self.lines}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        found = CURSOR.match(text)
        if found is None:
            raise UserError(
                f"'{text}' is not a log cursor.",
                code="request.bad_cursor",
                hint="Pass the `next_since` of a previous answer (or a line's `cursor`), or leave `since` out.",
                status=422,
            )
        return cls(int(found["seq"]), int(found["lines"]))


def list_chunks(store: Store, tenant: str, job_id: str, *, from_seq: int | None = None) -> list[Chunk]:
    """The job's chunks in order, all or from chunk ``from_seq`` on (InfraError when the store
    does not answer)."""
    prefix = logs_prefix(tenant, job_id)
    # "<seq>-..." sorts after "<seq>": the chunk ``from_seq`` is listed, none before it.
    after = f"{prefix}{from_seq:010d}" if from_seq else None
    found = []
    with _infra("list a job's logs"):
        for item in store.client.list_objects(store.bucket, prefix=prefix, recursive=True, start_after=after):
            name = item.object_name.rsplit("/", 1)[-1]
            parsed = CHUNK_NAME.match(name)
            if parsed is not None:
                found.append(
                    Chunk(int(parsed["seq"]), int(parsed["attempt"]), bool(parsed["end"]), item.object_name,
                          int(item.size or 0))
                )  # fmt: skip
    return sorted(found)


def read_chunk(store: Store, chunk: Chunk) -> list[dict[str, Any]]:
    """The lines of one chunk (a line that is not a JSON object is skipped)."""
    if chunk.size == 0:
        return []
    try:
        with _infra("read a job's logs"):
            response = store.client.get_object(store.bucket, chunk.key)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
    except InfraError:
        raise
    except Exception as exc:  # deleted between the listing and the read (a retention sweep)
        if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchObject"):
            return []
        raise
    lines = []
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


@dataclass
class LogRead:
    """Lines read from a cursor on: each with its own cursor, the cursor after the last, and the
    chunks seen (the follower looks at the last one to know whether the attempt is over)."""

    lines: list[dict[str, Any]]
    next_since: Cursor | None
    chunks: list[Chunk]


def read_lines(store: Store, tenant: str, job_id: str, since: Cursor | None, limit: int) -> LogRead:
    """At most ``limit`` lines of the job's log after ``since`` (from the start when None)."""
    chunks = list_chunks(store, tenant, job_id, from_seq=since.seq if since else None)
    lines: list[dict[str, Any]] = []
    cursor = since
    for chunk in chunks:
        if since is not None and chunk.seq < since.seq:
            continue
        skip = since.lines if since is not None and chunk.seq == since.seq else 0
        for n, line in enumerate(read_chunk(store, chunk)[skip:], start=skip + 1):
            if len(lines) >= limit:
                return LogRead(lines, cursor, chunks)
            cursor = Cursor(chunk.seq, n)
            lines.append({**line, "attempt": line.get("attempt", chunk.attempt), "cursor": str(cursor)})
        if cursor is None or cursor.seq < chunk.seq:  # an empty chunk (a final one) is passed over too
            cursor = Cursor(chunk.seq, 0)
    return LogRead(lines, cursor, chunks)
