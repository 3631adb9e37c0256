"""The result cache as a CLI user sees it: a second run of a spec costs nothing and says so (in
each item's line and in the summary); `--no-cache` asks the provider again."""

from __future__ import annotations

from pathlib import Path

from .cli_helpers import cli, ok, status, write_spec


def test_a_second_run_is_served_from_the_cache_and_no_cache_pays_again(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=3)
    ok(cli(ws, "run", str(spec), "--key", "first"))
    served = cli(ws, "run", str(spec), "--key", "second")
    assert "completed (3 completed; 3 from the cache, not paid for)" in ok(served)
    assert served.stderr.count(": completed from the cache (") == 3  # each item's line
    assert "for 0 of 3 images (" in served.stderr  # the estimate knew before the run
    assert "; 3 come from the result cache" in served.stderr
    second = status(ws)
    assert second["job"]["key"] == "second" and second["job"]["status"] == "completed"
    for item in second["items"]:
        assert item["cached"] and item["attempts"] == 0 and item["cost_usd"] == 0.0
        assert item["cached_from"].endswith(f"/{item['id']}")
    text = ok(cli(ws, "status"))
    assert text.count("cached (paid by first-") == 3

    paid = cli(ws, "run", str(spec), "--key", "third", "--no-cache")
    assert "cache" not in ok(paid) and "cache" not in paid.stderr
    third = status(ws)
    assert all(not item["cached"] and item["attempts"] == 1 for item in third["items"])
