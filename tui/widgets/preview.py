"""The job screen's preview: the selected image, or (toggled) its prompt and the final prompt
the provider worked from.

`Preview` draws either one in place, in a box of fixed size: moving through the table or
toggling never makes Textual lay the screen out again (textual-image's widget does, on every
new picture, which costs tens of milliseconds a key press). Sixel pictures go around Textual's
compositor, so `SixelPreview` shows them with textual-image's own widget instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image
from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from orchestrator import ItemRecord
from orchestrator.feed import ItemRow

from ..formats import reason
from ..graphics import PictureKind, renderable_class, sixel_widget

if TYPE_CHECKING:
    from textual_image.renderable._protocol import ImageRenderable

__all__ = ["Preview", "SixelPreview", "make_preview", "prompt_text"]


class Preview(Widget):
    """The selected image (`show_prompt` False) or its prompts (True)."""

    show_prompt: reactive[bool] = reactive(False)

    def __init__(self, kind: PictureKind, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.picture: Image.Image | None = None
        self.prompt = Text()
        self.note = "select an image"
        self._drawn: ImageRenderable | None = None

    def on_mount(self) -> None:
        self.watch_show_prompt(self.show_prompt)

    def watch_show_prompt(self, show: bool) -> None:
        self.set_class(show, "-prompt")
        self.border_title = "preview: prompt (p: image)" if show else "preview: image (p: prompt)"
        self.refresh()

    def show(self, row: ItemRow, record: ItemRecord | None, picture: Image.Image | None) -> None:
        """Show one image (None while it has none) and its prompts."""
        self.picture = picture
        self.prompt = prompt_text(row, record)
        self.note = _note(row, record, picture)
        self.border_subtitle = self.note if picture is not None else None
        self.refresh()

    def clear(self, note: str = "no image selected") -> None:
        self.picture, self.prompt, self.note = None, Text(note, style="dim"), note
        self.border_subtitle = None
        self.refresh()

    def render(self) -> RenderableType:
        if self._drawn is not None:
            self._drawn.cleanup()  # a Kitty picture is deleted from the terminal
            self._drawn = None
        if self.show_prompt:
            return self.prompt
        if self.picture is None:
            return Text(self.note, style="dim")
        self._drawn = renderable_class(self.kind)(self.picture, "auto", "auto")
        return self._drawn


class SixelPreview(Preview):
    """The same, with textual-image's Sixel widget for the picture."""

    def compose(self) -> ComposeResult:
        yield sixel_widget()(id="picture")
        with VerticalScroll(id="prompt-pane"):
            yield Static("", id="prompt-text")

    def show(self, row: ItemRow, record: ItemRecord | None, picture: Image.Image | None) -> None:
        super().show(row, record, picture)
        self.query_one("#picture", sixel_widget()).image = picture
        self.query_one("#prompt-text", Static).update(self.prompt)

    def clear(self, note: str = "no image selected") -> None:
        super().clear(note)
        self.query_one("#picture", sixel_widget()).image = None
        self.query_one("#prompt-text", Static).update(self.prompt)

    def render(self) -> RenderableType:
        return ""


def make_preview(kind: PictureKind, *, id: str | None = None) -> Preview:
    return SixelPreview(kind, id=id) if kind == "sixel" else Preview(kind, id=id)


def _note(row: ItemRow, record: ItemRecord | None, picture: Image.Image | None) -> str:
    if picture is not None and record is not None and record.width and record.height:
        return f"{row.id} · {record.width}x{record.height}"
    if row.status == "completed":
        return f"{row.id}: completed; loading its image…"
    return f"{row.id}: {row.status}, no image yet"


def prompt_text(row: ItemRow, record: ItemRecord | None) -> Text:
    """The prompt, the final prompt sent (the provider's rewrite, where it made one) and the
    error in words."""
    text = Text()
    text.append("Prompt\n", style="bold")
    text.append((record.prompt if record else "") + "\n\n")
    text.append("Final prompt sent\n", style="bold")
    if record is not None and record.revised_prompt:
        text.append(record.revised_prompt + "\n")
    elif row.status == "completed":
        text.append("the same: the provider did not rewrite it\n", style="dim")
    else:
        text.append("not known until the image arrives\n", style="dim")
    if row.error:
        text.append("\nError\n", style="bold red")
        text.append(f"{reason(row.error_kind)}: {row.error}\n")
    return text
