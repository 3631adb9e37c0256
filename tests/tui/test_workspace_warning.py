"""The jobs screen on a workspace that lies on a network file system: a notification says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workspace, mounts
from tui.screens import JobsScreen

from .helpers import notifications, tui_app, until


async def test_a_workspace_on_a_network_file_system_is_told_on_screen(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line warns on standard error, which the app does not show: it says so in a
    notification instead."""
    table = tmp_path / "mountinfo"
    table.write_text(
        f"22 1 254:0 / / rw - ext4 /dev/vda rw\n40 22 0:50 / {tmp_path} rw - cifs //nas/x rw\n"
    )
    monkeypatch.setattr(mounts, "MOUNTINFO", table)
    app = tui_app(workspace)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: bool(notifications(app)), "a notification")
        (said,) = notifications(app)
        assert said.startswith(f"Workspace: The workspace {workspace.root} is on a network file ")
        assert "(cifs)" in said and said.endswith("choose a workspace on a local disk.")
    monkeypatch.setattr(mounts, "MOUNTINFO", tmp_path / "no-table")
    app = tui_app(workspace)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        await app.workers.wait_for_complete()
        assert notifications(app) == []
