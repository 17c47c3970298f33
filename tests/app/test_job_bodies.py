"""GET /v1/jobs/{id}'s answer for an ended job is kept by its raw record: the same record gives
the same bytes, any change to it or another tenant gives a fresh answer; and the records' field
decoder reads what ``json.loads`` reads."""

from __future__ import annotations

import json

import pytest

from app.api.presenters import EndedJobBodies, job_public
from app.core.domain import Job, JobStatus, decode_fields, encode_fields
from app.state.lanes import decode_job_view


def reply_of(job: Job) -> list:
    """A ``job_view`` reply for a job that does not wait: its hash as a flat list."""
    fields = encode_fields(job.to_fields())
    return [[item for pair in fields.items() for item in pair]]


def body_of(tenant: str, reply: list) -> bytes:
    job, waiting = decode_job_view(tenant, "job_0123456789abcdef0123", reply)
    assert waiting is None
    return job_public(job).model_dump_json().encode()


def ended(**changes: object) -> Job:
    job = Job(id="job_0123456789abcdef0123", tenant="acme", kind="fit", lane="small", status=JobStatus.FINISHED,
              created_at=1.0, started_at=2.0, ended_at=3.5, result={"rows": 10, "classes": [0, 1]})  # fmt: skip
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def test_an_ended_job_is_answered_from_its_record_until_the_record_changes():
    bodies = EndedJobBodies()
    reply = reply_of(ended())
    assert bodies.get("acme", reply) is None
    bodies.put("acme", reply, ended(), body_of("acme", reply))
    assert bodies.get("acme", reply_of(ended())) == body_of("acme", reply)
    # A later change to the ended record (its webhook's outcome, its model deleted): a miss.
    assert bodies.get("acme", reply_of(ended(webhook_outcome="delivered"))) is None
    assert bodies.get("acme", reply_of(ended(model_deleted_at=9.0))) is None
    # Another tenant never gets it (its read would be refused as not found).
    assert bodies.get("other", reply) is None


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.STARTED])
def test_a_job_that_has_not_ended_is_not_kept(status):
    bodies = EndedJobBodies()
    reply = reply_of(ended(status=status))
    bodies.put("acme", reply, ended(status=status), b"{}")
    assert bodies.get("acme", reply) is None


def test_the_oldest_answer_goes_first():
    bodies = EndedJobBodies(max_entries=2)
    replies = [reply_of(ended(attempts=n)) for n in range(3)]
    for n, reply in enumerate(replies):
        bodies.put("acme", reply, ended(attempts=n), str(n).encode())
    assert bodies.get("acme", replies[0]) is None
    assert bodies.get("acme", replies[2]) == b"2"


def test_what_is_kept_is_bounded_in_bytes_whatever_the_results_size():
    # A tenant's jobs may each carry a result of up to 1 MiB: polling many of them must not grow
    # the API by as many megabytes (issue 21's bound on what one tenant costs the API process)
    bodies = EndedJobBodies(max_bytes=64 * 1024, max_entry_bytes=16 * 1024)
    big = ended(result={"rows": 10, "classes": [f"class-{n:04d}" for n in range(2_000)]})
    reply = reply_of(big)
    bodies.put("acme", reply, big, body_of("acme", reply))
    assert bodies.get("acme", reply) is None and bodies.held_bytes == 0  # one entry over its bound
    replies = [reply_of(ended(attempts=n)) for n in range(200)]
    for n, each in enumerate(replies):
        bodies.put("acme", each, ended(attempts=n), body_of("acme", each))
    assert 0 < bodies.held_bytes <= 64 * 1024
    assert bodies.get("acme", replies[-1]) is not None and bodies.get("acme", replies[0]) is None


@pytest.mark.parametrize(
    "text", ['"a"', " 1", "1 ", "[1, 2]", "NaN", "-Infinity", "1e400", '{"a": null}', "true", "1234567890123456789012"]
)
def test_record_fields_decode_as_json_loads_reads_them(text):
    assert repr(decode_fields({"f": text})) == repr({"f": json.loads(text)})


@pytest.mark.parametrize("text", ["", "x", "1 x", "{"])
def test_a_malformed_field_is_refused_as_json_loads_refuses_it(text):
    with pytest.raises(json.JSONDecodeError):
        decode_fields({"f": text})
