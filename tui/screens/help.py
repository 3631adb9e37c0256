"""Help: what each screen shows and the keys that work there."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

__all__ = ["HELP", "HelpScreen"]

HELP = """\
# imagebatch

**Jobs** lists every job of the workspace, newest first, live: jobs that another process runs
(`imagebatch run` in another terminal) show up and move too.

| key | on the jobs screen |
|---|---|
| enter | open the selected job |
| n | a new batch: prompts one per line, or a spec file |
| d | run the demo batch on the offline mock provider |

| key | on a job |
|---|---|
| r / R | retry the selected image / every failed or cancelled image |
| x / X | cancel the selected image / the whole job (asks first) |
| s / S | run an interrupted job here / stop its run once the requests under way are kept |
| p | preview: the image, or its prompt and the final prompt sent |
| f | show only one status (press again for the next) |
| o | open the image in the system viewer, or show its path |
| escape | back to the jobs |

Everywhere: **ctrl+p** finds any command by name, **?** shows this, **q** quits. Quitting
stops the jobs running in this app; they stay resumable (`imagebatch resume`, or **s**).
Retry, cancel and stop work the same on a job another process runs: that process carries them
out.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss()
