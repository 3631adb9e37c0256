"""Jupyter helpers (extra `[notebook]`): run batches from notebook cells and watch them live.

```python
from orchestrator.notebook import contact_sheet, results, run_batch, show_job, start_batch

view = await run_batch(["a red fox", "a blue whale"])  # draws a live grid; returns at the end
view = start_batch("story.json", provider="openai")   # returns at once; the job runs on
await view.wait()                                    #   the kernel's loop meanwhile
view = await show_job("story-1-ab12cd")  # any job of the workspace, live if a CLI runs it
sheet = await contact_sheet(view)        # a Pillow image of every thumbnail, labelled
found = await jobs()                     # the workspace's jobs, newest first
rows = await results(view)               # plain records; rows[0].image() opens the picture
```

Everything runs on the kernel's own event loop with top-level `await` (never `asyncio.run`), in
JupyterLab, classic Notebook and VS Code, with ipywidgets only. The grid has a card per image
(status, attempts, thumbnail, the error in words, Retry and Cancel), and Retry failed / Cancel
job for the whole job; a click is a request through the job's `JobHandle`, so it reaches the
process running the job, whether this kernel or a CLI in a terminal.

```
batches   specs from prompts, the kernel's orchestrator   view       BatchView: the job, its clicks
panel     the widgets, a feed drawn on them               following  the job's events into the feed
cards     the card and header widgets                     words      what the header says
tasks     tasks on the kernel's loop                      sheets     results and the contact sheet
```
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    import ipywidgets  # noqa: F401
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the notebook helpers need ipywidgets: pip install 'imagebatch[notebook]'"
    ) from missing

from PIL import Image

from ..records import JobRecord
from ..service import Orchestrator
from .batches import (
    Job,
    SpecLike,
    WorkspaceLike,
    batch_spec,
    handle_of,
    new_view,
    orchestrator_for,
    running_loop,
)
from .sheets import Result, draw_contact_sheet, result_of
from .view import PAGE_SIZE, BatchView

__all__ = [
    "BatchView",
    "Result",
    "batch_spec",
    "contact_sheet",
    "jobs",
    "orchestrator_for",
    "results",
    "run_batch",
    "show_job",
    "start_batch",
]


async def run_batch(
    spec: SpecLike,
    *,
    workspace: WorkspaceLike = None,
    orchestrator: Orchestrator | None = None,
    show: bool = True,
    page_size: int = PAGE_SIZE,
    **options: Any,
) -> BatchView:
    """Record and run a batch here, drawing it live; returns its view when the job ends.

    `spec` is a `JobSpec`, a dict, a spec file's path or a list of prompts; `options` go over it
    (`provider`, `model`, `concurrency`, `max_attempts`, `size`, `provider_options`, ... see
    `batch_spec`). Bad input raises `ConfigError` before anything is recorded. Interrupting
    the cell leaves the job running on the kernel's loop; its view stays live.
    """
    orchestrator = orchestrator or orchestrator_for(workspace)
    job_spec = await asyncio.to_thread(batch_spec, spec, **options)
    handle = await orchestrator.submit(job_spec)
    view = new_view(orchestrator, show=show, page_size=page_size)
    view.attach(handle)
    await view.wait()
    return view


def start_batch(
    spec: SpecLike,
    *,
    workspace: WorkspaceLike = None,
    orchestrator: Orchestrator | None = None,
    show: bool = True,
    page_size: int = PAGE_SIZE,
    **options: Any,
) -> BatchView:
    """Like `run_batch`, but return at once: the job is recorded and runs on the kernel's loop
    while the next cells run. `await view.wait()` waits for its end; `view.handle` is its
    `JobHandle` once recorded (`await view.ready()`). Bad input raises at once; a problem found
    while recording (a key another job holds) is shown in the widget and raised by `wait`."""
    running_loop("start_batch")
    job_spec = batch_spec(spec, **options)
    orchestrator = orchestrator or orchestrator_for(workspace)
    view = new_view(orchestrator, show=show, page_size=page_size)
    view.launch(orchestrator.submit(job_spec))
    return view


async def show_job(
    job: Job,
    *,
    workspace: WorkspaceLike = None,
    orchestrator: Orchestrator | None = None,
    show: bool = True,
    page_size: int = PAGE_SIZE,
) -> BatchView:
    """Draw any job of the workspace, live while some process (this kernel, a CLI) runs it;
    its buttons reach that process through the journal. `NotFoundError` for an unknown id."""
    handle = handle_of(job, workspace, orchestrator)
    await handle.status()  # an unknown id fails here, before a widget is drawn
    view = new_view(handle.orchestrator, show=show, page_size=page_size)
    view.attach(handle)
    await view.refresh()
    view.resend()
    return view


async def jobs(
    *, workspace: WorkspaceLike = None, orchestrator: Orchestrator | None = None
) -> list[JobRecord]:
    """The workspace's jobs, newest first: whatever ran them (a CLI, another notebook)."""
    orchestrator = orchestrator or orchestrator_for(workspace)
    if not orchestrator.workspace.journal_dir.is_dir():
        return []  # no workspace yet: nothing ran here, and reading must not make one
    found = await orchestrator.jobs()
    return sorted(found, key=lambda job: job.created_at, reverse=True)


async def results(
    job: Job, *, workspace: WorkspaceLike = None, orchestrator: Orchestrator | None = None
) -> list[Result]:
    """The job's items as plain records, in order: id, status, prompt, path, cost, attempts,
    error; `.image()` opens one as a Pillow image."""
    handle = handle_of(job, workspace, orchestrator)
    items = await handle.items()
    return [result_of(item, handle.orchestrator.workspace) for item in items]


async def contact_sheet(
    job: Job,
    *,
    columns: int = 6,
    tile_px: int = 192,
    workspace: WorkspaceLike = None,
    orchestrator: Orchestrator | None = None,
) -> Image.Image:
    """Every image of the job on one Pillow image, labelled with its id and status (items
    without an image show their status on a grey tile)."""
    rows = await results(job, workspace=workspace, orchestrator=orchestrator)
    return await draw_contact_sheet(rows, columns=columns, tile_px=tile_px)
