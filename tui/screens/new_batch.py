"""The new-batch form: prompts one per line (or a spec file from the workspace's folder),
provider, model, images per prompt, concurrency, size and the provider's options. Checked by the
spec's own rules; a refusal is shown on its field. Dismissed with the new job's id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static, TextArea

from orchestrator import ConfigError, JobSpec, KeyConflictError, load_spec

from ..advice import advice
from ..batch import FIELDS, BatchForm, FieldError, as_field_error, build_spec
from ..session import Session

__all__ = ["NewBatchScreen"]


class NewBatchScreen(Screen[str | None]):
    """A form that starts a job; dismissed with its id (None when left)."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Start", tooltip="Check the batch and start it"),
        Binding("escape", "leave", "Back", tooltip="Leave the form"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            yield from _field("name", "Name", Input(placeholder="my batch", id="name"))
            yield from _field("prompts", "Prompts, one per line", TextArea(id="prompts"))
            files: Select[str] = Select([], prompt="none: use the prompts above", id="spec_file")
            yield from _field("spec_file", "…or a spec file", files)
            providers = Select(
                [(name, name) for name in self.session.providers],
                prompt="mock (or the spec file's)",
                id="provider",
            )
            yield from _field("provider", "Provider", providers)
            yield from _field(
                "model", "Model", Input(placeholder="the provider's default", id="model")
            )
            yield from _field("count", "Images per prompt", Input(value="1", id="count"))
            yield from _field(
                "concurrency",
                "Concurrency",
                Input(placeholder="5 or auto (or the spec file's)", id="concurrency"),
            )
            yield from _field(
                "size", "Size", Input(placeholder="WIDTHxHEIGHT, e.g. 1024x1024", id="size")
            )
            yield from _field(
                "options",
                "Provider options (JSON)",
                Input(placeholder='e.g. {"seed": 1}', id="options"),
            )
            with Horizontal(id="form-buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="start")
                yield Button("Back (esc)", id="back")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "new batch"
        self.query_one("#prompts", TextArea).focus()
        self.list_spec_files()

    @work(group="files")
    async def list_spec_files(self) -> None:
        files = await asyncio.to_thread(self.session.spec_files)
        options = [(_shown(path, self.session.spec_folders), str(path)) for path in files]
        self.query_one("#spec_file", Select).set_options(options)

    def values(self) -> BatchForm:
        """What the form holds now."""
        spec_file = self.query_one("#spec_file", Select).value
        provider = self.query_one("#provider", Select).value
        return BatchForm(
            name=self._text("name"),
            prompts=self.query_one("#prompts", TextArea).text,
            spec_file=spec_file if isinstance(spec_file, str) else None,
            provider=provider if isinstance(provider, str) else None,
            model=self._text("model"),
            count=self._text("count"),
            concurrency=self._text("concurrency"),
            size=self._text("size"),
            options=self._text("options"),
        )

    def action_submit(self) -> None:
        self.clear_errors()
        self.submit(self.values())

    def action_leave(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start")
    def _start(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.action_leave()

    @work(exclusive=True, group="submit")
    async def submit(self, form: BatchForm) -> None:
        """Check the batch, record it and start it; or show why not on its field."""
        try:
            spec = build_spec(form, await self._file_spec(form))
            handle = await self.session.orchestrator.submit(spec)
        except FieldError as error:
            self.show_error(error.field, str(error))
        except KeyConflictError as error:
            self.show_error("name", advice(error))
        except ConfigError as error:
            refused = as_field_error(error, form.spec_file is not None)
            self.show_error(refused.field, advice(error) if error.option else str(refused))
        else:
            self.dismiss(handle.id)

    async def _file_spec(self, form: BatchForm) -> JobSpec | None:
        if form.spec_file is None:
            return None
        try:
            return await asyncio.to_thread(load_spec, Path(form.spec_file))
        except ConfigError as error:
            raise FieldError("spec_file", str(error)) from None

    def show_error(self, field: str, message: str) -> None:
        """Put the refusal under its field, mark the field and go there."""
        error = self.query_one(f"#{field}-error", Static)
        error.update(message)
        error.add_class("-shown")
        widget = self.query_one(f"#{field}")
        widget.add_class("-error")
        widget.focus()

    def clear_errors(self) -> None:
        for field in FIELDS:
            error = self.query_one(f"#{field}-error", Static)
            error.update("")
            error.remove_class("-shown")
            self.query_one(f"#{field}").remove_class("-error")

    def _text(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value


def _field(name: str, label: str, widget: Widget) -> Iterator[Widget]:
    yield Horizontal(Label(label, classes="field-label"), widget, classes="field-row")
    yield Static("", id=f"{name}-error", classes="field-error")


def _shown(path: Path, folders: tuple[Path, ...]) -> str:
    """A spec file's name as offered: relative to the folder it was found in."""
    for folder in folders:
        if path.parent == folder:
            return str(path.relative_to(folder.parent)) if folder != folders[0] else path.name
    return str(path)
