"""`imagebatch tui` is a subcommand like the others, and only it loads Textual."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from orchestrator.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print("textual" in sys.modules, "tui" in sys.modules)
"""


def test_the_other_commands_do_not_import_textual() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == "False False"
    assert "tui" in done.stdout  # the subcommand is listed in the help


def test_tui_takes_a_workspace_a_spec_and_how_to_draw_pictures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "tui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for word in ("--workspace", "spec", "--pictures", "halfcell", "sixel"):
        assert word in done.stdout
