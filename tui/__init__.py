"""The Textual terminal UI of imagebatch: run, watch and fix batches of images.

```
app        wiring and `make_app()`      session     what every screen shares
screens/   jobs, job, new batch, help   widgets/    tables, progress, preview, log
batch      the form made into a spec    requests    what the keys ask of a job
advice     errors in words              messages    the coalescing messages
graphics   pictures in the terminal     commands    the command palette
formats    statuses in colour, ages     app.tcss    every style
```

It holds jobs only through the core's `Orchestrator`, `JobHandle`, `JobFeed`, `Tally` and
records; the words for numbers, reasons and log lines come from `orchestrator.wording`.
"""

from .app import ImageBatchApp, make_app

__all__ = ["ImageBatchApp", "make_app"]
