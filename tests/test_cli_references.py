"""`first-as-reference` from the command line: pages that failed because their anchor did are
retried with it when asked (`--with-dependents`, or yes on a terminal), and are named when not.
"""

from __future__ import annotations

from pathlib import Path

from .cli_helpers import cli, items_by_id, only_job_id, status, write_spec
from .test_cli_pty import exit_code, on_a_terminal, received, wait_on


def failed_story(tmp_path: Path) -> tuple[Path, str]:
    """A story whose anchor fails both its attempts (the mock's `fail_first`), so its two
    pages fail unattempted; returns the workspace and the job id."""
    items = [{"id": "hero", "prompt": "the hero"}]
    items += [{"id": f"page-{n}", "prompt": f"page {n}"} for n in (1, 2)]
    spec = write_spec(
        tmp_path, items=items, options={"fail_first": {"hero": 2}}, consistency="first-as-reference"
    )
    ws = tmp_path / "ws"
    ran = cli(ws, "run", str(spec))
    assert ran.returncode != 0, ran.stderr
    job_id = only_job_id(ws)
    assert job_id is not None
    pages = items_by_id(status(ws, job_id))
    assert pages["hero"]["error"]["kind"] == "unavailable"
    for page in ("page-1", "page-2"):
        assert pages[page]["error"]["kind"] == "reference" and pages[page]["attempts"] == 0
        assert pages[page]["depends_on"] == ["hero"]
    return ws, job_id


def test_with_dependents_retries_the_pages_with_their_anchor(tmp_path: Path) -> None:
    ws, job_id = failed_story(tmp_path)
    retried = cli(ws, "retry", job_id, "--items", "hero", "--with-dependents")
    assert retried.returncode == 0, retried.stderr
    assert "retrying 3 items: hero, page-1, page-2" in retried.stderr
    items = items_by_id(status(ws, job_id))
    assert {item["status"] for item in items.values()} == {"completed"}
    assert [items[p]["attempts"] for p in ("hero", "page-1", "page-2")] == [3, 1, 1]


def test_without_it_the_pages_are_named_and_stay_failed(tmp_path: Path) -> None:
    ws, job_id = failed_story(tmp_path)
    retried = cli(ws, "retry", job_id, "--items", "hero")
    assert (
        f"job {job_id}: 2 failed or cancelled items reference hero: page-1, page-2; "
        "`--with-dependents` retries them too"
    ) in retried.stderr
    items = items_by_id(status(ws, job_id))
    assert items["hero"]["status"] == "completed"
    assert {items[p]["status"] for p in ("page-1", "page-2")} == {"failed"}


def test_on_a_terminal_the_retry_asks(tmp_path: Path) -> None:
    ws, job_id = failed_story(tmp_path)
    with on_a_terminal(ws, "retry", job_id, "--items", "hero") as child:
        wait_on(child, "the question", lambda: "retry them too? [Y/n]" in received(child))
        assert "2 failed or cancelled items reference hero: page-1, page-2" in received(child)
        child.sendline("")  # Enter: the default, yes
        assert exit_code(child, "the retry") == 0
    items = items_by_id(status(ws, job_id))
    assert {item["status"] for item in items.values()} == {"completed"}
