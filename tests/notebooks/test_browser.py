"""Notebook 1 in a real JupyterLab, in headless Chromium: the grid draws, and Retry works.

Run it with `pytest -m browser tests/notebooks/test_browser.py` (it needs Debian's `chromium`
and `chromium-driver`, and `pip install 'imagebatch[browser]'`). It saves a screenshot of the
grid (before the click) in its tmp folder; `IMAGEBATCH_UPDATE_DOCS=1` copies it to
`docs/notebook-quickstart.png`, the picture the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.notebooks.browser_helpers import Card, NotebookPage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "notebooks" / "01-quickstart.ipynb"
SCREENSHOT = ROOT / "docs" / "notebook-quickstart.png"
FAILING = "page-07"
"""The page the notebook makes fail once on purpose (`fail_first`, `max_attempts=1`)."""


@pytest.fixture
def page(tmp_path: Path) -> Iterator[NotebookPage]:
    """Notebook 1, copied to a tmp folder, open in JupyterLab in headless Chromium."""
    # Imported here, not at the top: the default run deselects this test by its marker, and a
    # module-level skip would still count it as skipped there.
    needs = "the browser test needs pip install 'imagebatch[browser]'"
    pytest.importorskip("selenium", reason=needs)
    pytest.importorskip("jupyterlab", reason=needs)
    from tests.notebooks.browser_helpers import (
        NotebookPage,
        chromium,
        jupyter_lab,
        missing_browser,
    )

    if reason := missing_browser():
        pytest.skip(reason)
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(QUICKSTART, root)
    env = {"IMAGEBATCH_WORKSPACE": str(tmp_path / "workspace")}
    with (
        jupyter_lab(root, tmp_path / "jupyter", env) as lab,
        chromium(tmp_path / "chromium") as driver,
    ):
        page = NotebookPage(driver)
        page.open(lab.notebook(QUICKSTART.name), timeout=60)
        yield page
        print("browser console:", *page.console(), sep="\n  ")  # shown if the test failed


def ended(cards: list[Card]) -> bool:
    """The grid shows all 12 pages, none of them waiting or running any more."""
    return len(cards) == 12 and all(card.status in ("completed", "failed") for card in cards)


def completed(card: Card) -> Card | None:
    """`card` if it shows a completed image, with its thumbnail loaded."""
    return card if card.status == "completed" and card.thumbnail else None


@pytest.mark.timeout(300)
def test_the_grid_draws_in_jupyterlab_and_retry_completes_the_failed_page(
    page: NotebookPage, tmp_path: Path
) -> None:
    page.run_all(timeout=120)
    page.wait_until(lambda: ended(page.cards()), timeout=30, what="12 cards of ended images")
    page.wait_until(
        lambda: sum(card.thumbnail for card in page.cards()) >= 11,
        timeout=30,
        what="the thumbnails to load",
    )

    cards = page.cards()
    assert all(card.visible for card in cards)
    assert [card.id for card in cards] == [f"page-{n:02d}" for n in range(1, 13)]
    assert all(set(card.buttons) == {"Retry", "Cancel"} for card in cards)
    assert {card.id for card in cards if card.thumbnail} == {
        card.id for card in cards if card.id != FAILING
    }
    assert [card.id for card in cards if card.status == "failed"] == [FAILING]
    failed = page.card(FAILING)
    assert "server error" in failed.error
    assert failed.buttons == {"Retry": True, "Cancel": False}
    assert all(card.status == "completed" for card in cards if card.id != FAILING)
    # The README's picture: the grid as a user first sees it, the failure and its Retry.
    shot = tmp_path / SCREENSHOT.name
    page.screenshot(shot)
    if os.environ.get("IMAGEBATCH_UPDATE_DOCS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)

    page.button(FAILING, "imagebatch-retry").click()
    retried = page.wait_until(
        lambda: completed(page.card(FAILING)), timeout=60, what=f"{FAILING} to complete"
    )
    assert retried.error == ""
    assert retried.buttons == {"Retry": False, "Cancel": False}
    assert sum(card.thumbnail for card in page.cards()) == 12
    page.wait_until(
        lambda: "12/12 · completed" in page.batch().text, timeout=30, what="the job to complete"
    )
    assert not [line for line in page.console() if line.startswith("SEVERE")]
