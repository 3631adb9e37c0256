"""Starting and showing batches from notebook cells, on the kernel's own event loop.

A kernel keeps one `Orchestrator` per workspace (made on first use, on the kernel's loop); jobs
it runs go on while later cells run, and stay resumable if the kernel stops. API keys are read
from `os.environ` each time a batch starts, so a key set in an earlier cell is used.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from IPython.display import display

from ..errors import ConfigError
from ..handle import JobHandle
from ..service import Orchestrator
from ..spec import OVERRIDABLE_LIMITS, JobSpec, parse_spec
from ..specfile import load_spec
from ..storage import Workspace
from .view import PAGE_SIZE, BatchView

__all__ = ["Job", "SpecLike", "WorkspaceLike", "batch_spec", "handle_of", "orchestrator_for"]

SpecLike = JobSpec | Mapping[str, Any] | str | os.PathLike[str] | Sequence[str | Mapping[str, Any]]
"""A spec, a spec as a dict, a spec file's path, or a list of prompts (or of item dicts)."""
WorkspaceLike = Workspace | str | os.PathLike[str] | None
"""A workspace folder; None means `$IMAGEBATCH_WORKSPACE`, else `./.imagebatch`."""
Job = str | JobHandle | BatchView
"""A job: its id, its handle, or a view of it."""

TOP_LEVEL = ("key", "name", "provider", "model", "provider_options", "allow_unknown_model")

_orchestrators: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, Orchestrator]]
_orchestrators = weakref.WeakKeyDictionary()


def running_loop(what: str) -> asyncio.AbstractEventLoop:
    """The kernel's running loop, or a `ConfigError` saying where `what` can be called."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigError(
            f"{what} runs on a running event loop: call it in a notebook cell (Jupyter, VS Code) "
            "or inside an async function"
        ) from None


def orchestrator_for(workspace: WorkspaceLike = None) -> Orchestrator:
    """This kernel's orchestrator of `workspace`, made on first use."""
    loop = running_loop("imagebatch's notebook helpers")
    if not isinstance(workspace, Workspace):
        value = None if workspace is None else os.fspath(workspace)
        workspace = Workspace.resolve(value, os.environ)
    mine = _orchestrators.setdefault(loop, {})
    if workspace.root not in mine:
        mine[workspace.root] = Orchestrator(workspace, env=os.environ)
    orchestrator = mine[workspace.root]
    orchestrator.env = dict(os.environ)  # keys set in a cell since count from the next batch
    return orchestrator


def batch_spec(spec: SpecLike, **options: Any) -> JobSpec:
    """`spec` made a `JobSpec`, with `options` over it: `key`, `name`, `provider`, `model`,
    `provider_options`, `allow_unknown_model`, the limits (`concurrency`, a number or `"auto"`,
    `max_concurrency`, `rate_per_minute`, `timeout_s`, `max_attempts`, `max_rate_limited`),
    `size` (every item's default) and `output` (a dict merged into the spec's). A `provider`
    other than the spec's drops the spec's `provider_options` and `model` (they were written
    for its own provider) unless given too. Blocking (reads a file).
    """
    unknown = sorted(set(options) - {*OVERRIDABLE_LIMITS, *TOP_LEVEL, "size", "output"})
    if unknown:
        known = ", ".join((*TOP_LEVEL, *OVERRIDABLE_LIMITS, "size", "output"))
        raise ConfigError(f"unknown option {unknown[0]!r}; use one of {known}")
    base = _as_spec(spec, key=options.get("key"), name=options.get("name"))
    data = base.model_dump()
    provider = options.get("provider")
    if provider is not None and provider != base.provider:
        data["provider_options"], data["model"] = {}, None
    for name in TOP_LEVEL:
        if options.get(name) is not None:
            data[name] = options[name]
    for name in OVERRIDABLE_LIMITS:
        if options.get(name) is not None:
            data["limits"][name] = options[name]
    if options.get("concurrency") not in (None, "auto"):
        data["limits"]["max_concurrency"] = None  # a fixed number has no maximum
    if options.get("size") is not None:
        data["defaults"]["size"] = options["size"]
    if options.get("output") is not None:
        data["output"] = {**data["output"], **dict(options["output"])}
    return parse_spec(data, "run_batch's options") if options else base


def _as_spec(spec: SpecLike, *, key: str | None, name: str | None) -> JobSpec:
    if isinstance(spec, JobSpec):
        return spec
    if isinstance(spec, str | os.PathLike):
        return load_spec(Path(spec))
    if isinstance(spec, Mapping):
        return parse_spec(dict(spec), "the spec")
    if isinstance(spec, Sequence) and spec:
        items = [
            {"id": f"image-{n:02d}", "prompt": entry} if isinstance(entry, str) else dict(entry)
            for n, entry in enumerate(spec, 1)
        ]
        first = next((item.get("prompt") for item in items if item.get("prompt")), "")
        return parse_spec(
            {
                "key": key or f"notebook-{secrets.token_hex(3)}",
                "name": name or _shortened(str(first)),
                "items": items,
            },
            "the prompts",
        )
    raise ConfigError(
        "give a spec: a JobSpec, a dict, a spec file's path, or a non-empty list of prompts"
    )


def _shortened(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def handle_of(
    job: Job, workspace: WorkspaceLike = None, orchestrator: Orchestrator | None = None
) -> JobHandle:
    """The handle of `job`; an id is looked up in `orchestrator`, else in `workspace`'s."""
    if isinstance(job, BatchView):
        if job.handle is None:
            raise ConfigError("that batch is still being recorded: `await view.ready()` first")
        return job.handle
    if isinstance(job, JobHandle):
        return job
    if isinstance(job, str) and job:
        return (orchestrator or orchestrator_for(workspace)).handle(job)
    raise ConfigError("give a job: its id, its JobHandle or its BatchView")


def new_view(orchestrator: Orchestrator, *, show: bool, page_size: int = PAGE_SIZE) -> BatchView:
    view = BatchView(orchestrator, page_size=page_size)
    if show:
        display(view.widget)  # type: ignore[no-untyped-call]
    return view
