"""Item and job records built by hand, for the tally's tests: a snapshot as the journal would
give it, without a journal."""

from __future__ import annotations

from orchestrator import ItemRecord, JobRecord
from orchestrator.spec import JobConfig

__all__ = ["T0", "item_record", "job_record"]

T0 = 1_700_000_000.0
"""When the job was created."""


def item_record(n: int, **fields: object) -> ItemRecord:
    """Item `i{n}` of job `j`, pending unless `fields` say otherwise."""
    return ItemRecord.model_validate(
        {
            "job_id": "j",
            "id": f"i{n}",
            "index": n,
            "prompt": f"p{n}",
            "created_at": T0,
            "updated_at": T0,
            **fields,
        }
    )


def job_record(total: int, **fields: object) -> JobRecord:
    """Job `j` of `total` items, created at `T0`, with `fields` (`active`, ...)."""
    return JobRecord.model_validate(
        {
            "id": "j",
            "config": JobConfig(key="k"),
            "total": total,
            "created_at": T0,
            "updated_at": T0,
            **fields,
        }
    )
