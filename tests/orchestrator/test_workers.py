"""Worker processes for post-processing: where multiprocessing keeps its socket, what is left
behind when the parent leaves, and threads when no worker process can start."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import orchestrator.workers as workers
from orchestrator.spec import OutputSpec
from orchestrator.stages import PostStage
from orchestrator.testing.outside import wait_for

from ..cli_helpers import _env, cli, write_spec
from .test_stages import write_png

_REPO = Path(__file__).resolve().parents[2]


def _run(script: str, tmpdir: Path, output: Path) -> list[str]:
    """Run `script` in a fresh interpreter with `TMPDIR=tmpdir`; its output lines. The output
    goes to a file: its worker processes hold what they inherited until they see it gone, and
    they see it gone once it is reaped (`wait`), not while it is a zombie."""
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script)],
            cwd=_REPO,
            env={"TMPDIR": str(tmpdir), "PATH": "/usr/bin:/bin"},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        code = proc.wait(timeout=120)
    lines = output.read_text().splitlines()
    assert code == 0, lines
    return lines


_PROCESS_A_LARGE_IMAGE = """
    import asyncio, io, multiprocessing.util, os, sys
    from pathlib import Path
    from PIL import Image
    from orchestrator.spec import OutputSpec
    from orchestrator.stages import PostStage

    out = Path(os.environ["TMPDIR"])
    raw = out / "raw.png"
    Image.new("RGB", (320, 320), (10, 200, 30)).save(raw)
    stage = PostStage(1, processes=True)
    done = asyncio.run(stage.process(raw, out / "a.png", out / "a.webp", OutputSpec(format="png")))
    print(done.width, stage.pool.processes, multiprocessing.util.get_temp_dir())
    sys.stdout.flush()
    os._exit(0)  # as the CLI leaves (cli/leave.py): no clean-up of its own runs
"""


def test_the_folder_multiprocessing_kept_goes_with_its_workers_when_the_parent_leaves_at_once(
    tmp_path: Path,
) -> None:
    """The CLI ends with `os._exit`, and a run may be killed: the parent's `pymp-*` folder is
    removed by its workers once they see it gone (before, every such run left one behind)."""
    tmpdir = tmp_path / "t"
    tmpdir.mkdir()
    width, in_processes, folder = _run(_PROCESS_A_LARGE_IMAGE, tmpdir, tmp_path / "out")[-1].split()
    assert (width, in_processes) == ("320", "True")
    assert Path(folder).parent == tmpdir
    wait_for("the parent's multiprocessing folder to go", lambda: not Path(folder).exists())


_STORE_AND_LEAVE = """
    import multiprocessing.util, os, sys
    from orchestrator.workers import start_serving_processes

    served = start_serving_processes(2)
    print(len(served), multiprocessing.util.get_temp_dir())
    sys.stdout.flush()
    os._exit(0)  # as the CLI leaves; a SIGKILL leaves the same way
"""


def test_the_folder_multiprocessing_kept_goes_with_the_store_workers_too(tmp_path: Path) -> None:
    """The store workers end as soon as their pipes close, before their watch sees the parent
    gone: they remove its folder then (it was left behind, in the temporary folder)."""
    tmpdir = tmp_path / "t"
    tmpdir.mkdir()
    count, folder = _run(_STORE_AND_LEAVE, tmpdir, tmp_path / "out")[-1].split()
    assert count == "2" and Path(folder).parent == tmpdir
    wait_for("the parent's multiprocessing folder to go", lambda: not Path(folder).exists())


def test_a_store_worker_whose_pipe_closes_during_a_call_leaves_quietly(tmp_path: Path) -> None:
    """A run that stops (its lease lost, say) closes the pipes while a worker still stores an
    image: the worker's answer has nowhere to go. It printed a traceback on the terminal."""
    script = """
        import pickle, time
        from orchestrator.workers import start_serving_processes
        ((process, pipe),) = start_serving_processes(1)
        pipe.send_bytes(pickle.dumps((time.sleep, (0.3,))))
        pipe.close()
        time.sleep(1.0)  # the worker answers meanwhile, into a closed pipe
        print("done")
    """
    assert _run(script, tmp_path, tmp_path / "out") == ["done"]


def test_worker_processes_start_under_a_temporary_folder_too_deep_for_a_socket(
    tmp_path: Path,
) -> None:
    """A UNIX socket's path holds at most 107 bytes. Under a deep `TMPDIR` the fork server
    could not listen, and every image over the thread limit failed ("AF_UNIX path too long")
    after it was paid for. Its socket now goes in /tmp."""
    deep = tmp_path / ("d" * 60) / ("e" * 30)
    deep.mkdir(parents=True)
    assert workers._too_long(str(deep))
    width, in_processes, folder = _run(_PROCESS_A_LARGE_IMAGE, deep, tmp_path / "out")[-1].split()
    assert (width, in_processes) == ("320", "True")
    assert Path(folder).parent in {Path("/tmp"), Path("/var/tmp")}
    wait_for("the parent's multiprocessing folder to go", lambda: not Path(folder).exists())


def test_workers_start_with_what_they_run_loaded_and_nothing_heavier(tmp_path: Path) -> None:
    """The fork server loads it once: a worker that had to import the library itself took a
    fifth of a second of CPU at a run's start, twice, taken from the run. And it is only what
    a worker runs: the models (pydantic), the spec and asyncio would take as long again."""
    script = """
        import sys
        from orchestrator.workers import start_worker_processes
        pool = start_worker_processes(1)
        names = (
            "orchestrator.store_work", "orchestrator.imaging", "orchestrator.journal.fence",
            "pydantic", "orchestrator.spec", "orchestrator.journal.disk", "asyncio",
        )
        ask = "[name in __import__('sys').modules for name in %r]" % (names,)
        print(*pool.submit(eval, ask).result(), "orchestrator.store_work" in sys.modules)
        pool.shutdown()
    """
    loaded = _run(script, tmp_path, tmp_path / "out")[-1].split()
    assert loaded[:3] == ["True"] * 3  # what it runs, from the fork server
    assert loaded[3:7] == ["False"] * 4  # and nothing heavier
    assert loaded[7] == "False"  # not this process's doing


async def test_images_are_post_processed_in_threads_when_no_worker_process_can_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*args: object, **kwargs: object) -> object:
        raise OSError("AF_UNIX path too long")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", refused)
    raw = write_png(tmp_path / "raw.png", 320)
    stage = PostStage(1, processes=True)
    try:
        with caplog.at_level(logging.WARNING, logger="orchestrator.workers"):
            done = await stage.process(
                raw, tmp_path / "a.png", tmp_path / "a.webp", OutputSpec(format="png")
            )
        assert done.width == 320 and (tmp_path / "a.png").stat().st_size > 0
        assert not stage.pool.processes  # the next images go to threads at once
        assert "working in threads" in caplog.text
        assert "AF_UNIX path too long" in caplog.text
    finally:
        stage.close()


def test_the_program_leaves_no_multiprocessing_folder_behind(tmp_path: Path) -> None:
    """`imagebatch` ends with `os._exit`, which skips multiprocessing's own clean-up: each run
    that post-processed in worker processes left a `pymp-*` folder in the temporary folder."""
    tmpdir = Path(tempfile.mkdtemp(prefix="ib-"))  # short: the socket stays in it
    try:
        spec = write_spec(
            tmp_path,
            items=2,
            options={"seed": 1, "latency_mean_s": 0, "latency_distribution": "fixed"},
            defaults={"size": "320x320"},  # over SMALL_PIXELS: done in worker processes
        )
        done = cli(tmp_path / "ws", "run", str(spec), env=_env(TMPDIR=str(tmpdir)))
        assert done.returncode == 0, done.stderr
        assert "2 completed" in done.stdout
        assert not list(tmpdir.glob("pymp-*"))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


_PROCESS_THEN = """
    import asyncio, os, signal
    from pathlib import Path
    from PIL import Image
    from orchestrator.spec import OutputSpec
    from orchestrator.stages import PostStage

    out = Path(os.environ["TMPDIR"])
    raw = out / "raw.png"
    Image.new("RGB", (320, 320), (10, 200, 30)).save(raw)
    stage = PostStage(1, processes=True)
    asyncio.run(stage.process(raw, out / "a.png", out / "a.webp", OutputSpec(format="png")))
    print("processed", flush=True)
"""
"""A large image post-processed in a worker process; what the process does then follows."""


def _captured(tmp_path: Path, then: str) -> subprocess.CompletedProcess[str]:
    """Run `_PROCESS_THEN` and `then` with its output captured, as `subprocess.run` callers of
    `imagebatch` do: it returns once every process holding the pipes is gone."""
    tmpdir = tmp_path / "t"
    tmpdir.mkdir()
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROCESS_THEN) + then],
        cwd=_REPO,
        env={"TMPDIR": str(tmpdir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,  # before the zombie fix: never returned
    )


def test_a_caller_that_captures_the_output_is_not_kept_waiting_by_the_workers(
    tmp_path: Path,
) -> None:
    """`subprocess.run(["imagebatch", ...], capture_output=True)` reads until the pipes close
    and only then reaps the process. The workers hold the pipes, and a parent that is not
    reaped is a zombie, which `kill(pid, 0)` still finds: the workers took it for alive and
    the caller waited for ever. They now see a zombie as gone."""
    done = _captured(tmp_path, "os._exit(0)  # the pool not shut down: its worker waits on it")
    assert done.returncode == 0 and done.stdout == "processed\n", done.stderr


def test_a_run_killed_with_sigkill_leaves_no_warning_on_the_terminal(tmp_path: Path) -> None:
    """The pool's named semaphores outlive a process killed with SIGKILL; multiprocessing's
    resource tracker (a process of its own, writing to the same terminal) unlinks them and
    printed 'UserWarning: resource_tracker: There appear to be 5 leaked semaphore objects'
    under the user's prompt after `kill -9` of a run."""
    done = _captured(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind")
    assert done.returncode == -9 and done.stdout == "processed\n"
    assert done.stderr == ""


_FROM_STDIN = """
import asyncio, sys
from pathlib import Path
from typing import Any
from orchestrator import Orchestrator, Workspace, parse_spec

async def main() -> None:
    items = [{"id": f"p{n}", "prompt": f"page {n}"} for n in range(3)]
    spec = parse_spec({"key": "stdin", "provider": "mock", "items": items}, "stdin")
    async with Orchestrator(Workspace(Path(sys.argv[1]))) as orchestrator:
        job = await orchestrator.submit(spec)
        print((await job.wait()).status)

asyncio.run(main())
"""


def test_a_script_read_from_stdin_stores_its_images_in_threads(tmp_path: Path) -> None:
    """A worker process imports the main module again, which a script read from stdin does not
    have: no worker can start, and the images are stored in threads instead of failing."""
    done = subprocess.run(
        [sys.executable, "-", str(tmp_path / "ws")],
        input=_FROM_STDIN,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
    )
    assert done.stdout.strip() == "completed", done.stderr
    assert "working in threads: no worker process could start" in done.stderr


def _start_in(result: Any) -> None:
    result.put(workers.start_worker_processes(1) is None)


def test_a_daemonic_process_works_in_threads() -> None:
    """A process that is itself a pool's worker (daemonic) may not start processes: imagebatch
    run inside one works in threads rather than failing every image."""
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=_start_in, args=(result,), daemon=True)
    process.start()
    try:
        assert result.get(timeout=60) is True
    finally:
        process.join(timeout=60)


def test_closing_a_pool_does_not_wait_for_its_start_and_stops_it_once_up() -> None:
    """The loop closes and discards pools: it waited for a start under way (a few hundred ms,
    or for ever if the start never ended), as both held one lock."""
    entered, release = threading.Event(), threading.Event()
    stopped: list[str] = []
    got: list[str | None] = []

    def slow_start(workers: int) -> str:
        entered.set()
        release.wait(timeout=30)
        return f"pool of {workers}"

    pool = workers.WorkerPool(2, slow_start, stopped.append)
    starter = threading.Thread(target=lambda: got.append(pool.start()))
    starter.start()
    assert entered.wait(timeout=30)
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(timeout=5)
    assert not closer.is_alive(), "close waited for the start"
    release.set()
    starter.join(timeout=30)
    assert got == [None] and stopped == ["pool of 2"]  # overtaken by the close: stopped
    assert pool.started is None
    assert pool.start() == "pool of 2"  # a later start starts anew
