"""Every notebook in `notebooks/`, executed headless by a real Jupyter kernel (nbclient), offline;
each test checks what the notebook made: the journal's records, the files, and the widgets'
state as the executed notebook stores it."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from orchestrator import ItemStatus, JobStatus, Orchestrator, Workspace
from orchestrator.providers.mock_drawing import palette

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 60
KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GEMINI_BASE_URL")

pytestmark = pytest.mark.timeout(180)


class Executed:
    """A notebook after a run: its cells' outputs and its widgets' stored state."""

    def __init__(self, notebook: Any, seconds: float) -> None:
        self.notebook = notebook
        self.seconds = seconds
        stored = notebook.metadata.get("widgets", {})
        self.models: dict[str, Any] = stored["application/vnd.jupyter.widget-state+json"]["state"]

    def states(self, model_name: str) -> list[dict[str, Any]]:
        return [m["state"] for m in self.models.values() if m["model_name"] == model_name]

    def pictures(self) -> list[Image.Image]:
        """The thumbnails the cards hold (their bytes are stored as buffers)."""
        return [
            Image.open(io.BytesIO(base64.b64decode(buffer["data"])))
            for model in self.models.values()
            if model["model_name"] == "ImageModel"
            for buffer in model.get("buffers", [])
            if buffer["path"] == ["value"]
        ]

    def labels(self) -> list[str]:
        return [state.get("value", "") for state in self.states("LabelModel")]

    def text(self) -> str:
        """Everything the cells printed."""
        return "".join(
            output.get("text", "")
            for cell in self.notebook.cells
            for output in cell.get("outputs", [])
            if output.get("output_type") == "stream"
        )

    def images(self) -> list[Image.Image]:
        """Pictures the cells displayed (a contact sheet, a Pillow image)."""
        found: list[Image.Image] = []
        for cell in self.notebook.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {}).get("image/png")
                if data:
                    found.append(Image.open(io.BytesIO(base64.b64decode(data))))
        return found


def execute(
    name: str, folder: Path, monkeypatch: pytest.MonkeyPatch, *, then: str = ""
) -> Executed:
    """Run notebook `name` in `folder` (its workspace in `folder/ws`), with `then` appended as a
    last cell; fails on the first cell that raises."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("IMAGEBATCH_WORKSPACE", str(folder / "ws"))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells), "commit notebooks bare"
    if then:
        notebook.cells.append(nbformat.v4.new_code_cell(then))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(folder)}},
    )
    started = time.monotonic()
    client.execute()
    return Executed(notebook, time.monotonic() - started)


def journal(folder: Path) -> dict[str, Any]:
    """Every job of the notebook's workspace with its items, read through the public API."""

    async def read() -> dict[str, Any]:
        async with Orchestrator(Workspace(folder / "ws")) as orchestrator:
            return {
                job.id: (job, await orchestrator.handle(job.id).items())
                for job in await orchestrator.jobs()
            }

    return asyncio.run(read())


CLICK_RETRY = """
card = next(card for card in view.cards if card.item_id == "page-07")
assert card.status.value == "failed" and not card.retry.disabled
card.retry.click()
job = await view.wait()
print("after the click:", job.status)
"""


def test_quickstart_fails_one_page_which_its_retry_button_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = execute("01-quickstart.ipynb", tmp_path, monkeypatch, then=CLICK_RETRY)
    assert run.seconds < 60
    assert "after the click: completed" in run.text()
    [(job, items)] = journal(tmp_path).values()
    assert job.status == JobStatus.COMPLETED and len(items) == 12
    by_id = {item.id: item for item in items}
    assert [a.outcome for a in by_id["page-07"].attempts] == ["error", "ok"]
    assert all(len(item.attempts) == 1 for item in items if item.id != "page-07")
    for item in items:
        assert item.status == ItemStatus.COMPLETED
        assert (tmp_path / "ws" / (item.image_path or "")).is_file()
    # The widgets as the notebook stored them: the bar, the header and twelve cards.
    [bar] = run.states("IntProgressModel")
    assert (bar["value"], bar["max"], bar["bar_style"]) == (12, 12, "success")
    labels = run.labels()
    assert "12/12 · completed" in labels
    assert "retried page-07: completed" in labels
    assert labels.count("completed") == 12
    pictures = run.pictures()
    assert len(pictures) == 12 and {picture.format for picture in pictures} == {"WEBP"}
    buttons = [s["description"] for s in run.states("ButtonModel")]
    assert buttons.count("Retry") == 12 and buttons.count("Cancel") == 12
    # The contact sheet cell ran before the click: 12 tiles of 160 px, six to a row.
    sheet = run.images()[0]
    assert sheet.size == (6 * 166 + 6, 2 * (160 + 30 + 6) + 6)


def test_story_draws_the_character_first_and_gives_it_to_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = execute("02-story-consistency.ipynb", tmp_path, monkeypatch)
    assert run.seconds < 60
    text = run.text()
    assert (
        "medium: $0.034 an image; estimated cost: $0.24 for 7 images "
        "(openai gpt-image-1.5, from the price table)"
    ) in text
    assert "7 images completed, $0.00 spent" in text
    assert "ConfigError: the spec: items[0].references: the references go round" in text
    [(book, items)] = journal(tmp_path).values()
    assert book.status == JobStatus.COMPLETED and book.config.anchor == "pip"
    by_id = {item.id: item for item in items}
    sheet, pages = by_id.pop("pip"), list(by_id.values())
    assert [page.id for page in pages] == [f"page-{n}" for n in range(1, 7)]
    assert {page.depends_on for page in pages} == {("pip",)} and sheet.depends_on == ()
    assert all(item.status == ItemStatus.COMPLETED for item in items)
    assert sheet.finished_at is not None
    assert all(page.attempts[0].started_at >= sheet.finished_at for page in pages)
    assert "the character sheet was done" in text and "page-3 waited for: ('pip',)" in text
    # every page was drawn from the sheet: it carries the sheet's colours
    sheet_colours = palette(Image.open(tmp_path / "ws" / (sheet.raw_path or "")))
    for page in pages:
        with Image.open(tmp_path / "ws" / (page.raw_path or "")) as drawn:
            top_row = [drawn.getpixel((x, 0)) for x in range(drawn.width)]
        assert Counter(top_row).most_common(1)[0][0] == sheet_colours[0], page.id
    assert run.images()[0].size == (4 * 206 + 6, 2 * 236 + 6)


def test_real_providers_run_offline_on_the_fake_server_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = execute("03-real-providers.ipynb", tmp_path, monkeypatch)
    assert run.seconds < 60
    text = run.text()
    assert "No OPENAI_API_KEY or GEMINI_API_KEY in the environment: using the local fake" in text
    assert "fake server stopped" in text
    assert "sk-local-fake-key" not in text
    jobs = {job.config.provider: (job, items) for job, items in journal(tmp_path).values()}
    assert set(jobs) == {"openai", "gemini"}
    for job, items in jobs.values():
        assert job.status == JobStatus.COMPLETED and len(items) == 3
        assert all(item.cost_usd is not None and item.cost_usd > 0 for item in items)
    for key in ("sk-local-fake-key", "local-fake-key"):
        for path in (tmp_path / "ws").rglob("*"):
            if path.is_file() and path.suffix not in (".png", ".jpg", ".webp"):
                assert key.encode() not in path.read_bytes(), path


def test_inspecting_a_workspace_retries_a_page_through_the_cli_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = execute("04-inspect-workspace.ipynb", tmp_path, monkeypatch)
    assert run.seconds < 60
    text = run.text()
    assert "page-03 failed: mock: provider_options.fail_first fails attempt 1" in text
    assert "retrying page-03 in the process running the job" in text
    assert "the CLI exited with code 0" in text
    [(job, items)] = journal(tmp_path).values()
    assert job.status == JobStatus.COMPLETED and job.config.key == "inspect-demo"
    retried = next(item for item in items if item.id == "page-03")
    assert [attempt.outcome for attempt in retried.attempts] == ["error", "ok"]
    labels = run.labels()
    assert "12/12 · completed" in labels and labels.count("completed") == 12
