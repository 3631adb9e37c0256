"""JupyterLab in a subprocess and headless Chromium driven by selenium, for the browser test.

`jupyter_lab(root)` serves `root` on 127.0.0.1 with a random token and its own config, data and
runtime folders, and stops the server and its kernels when the block ends, however it ends.
`chromium()` opens Debian's headless Chromium. `NotebookPage` is what the test does in JupyterLab:
open a notebook, run it through `window.jupyterapp` (the app is exposed for tests), and read the
batch widget's cards from the DOM in one go, as `Card` records.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # ipykernel needs it; it ships no hints
from PIL import Image, ImageOps
from selenium.common.exceptions import JavascriptException
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "Card",
    "Lab",
    "NotebookPage",
    "chromium",
    "jupyter_lab",
    "missing_browser",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_S = 60.0
"""How long JupyterLab may take to answer, and to stop with its kernels."""
SETTINGS = {
    # No "get notified about Jupyter news?" toast over the notebook or in the screenshot.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell stays in the DOM, scrolled into view or not.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing: apt-get install -y {package}"
    return None


# ------------------------------------------------------------------ JupyterLab


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it listens and its token."""

    url: str
    token: str

    def notebook(self, name: str) -> str:
        """The address that opens notebook `name` (a path under the root) in the browser."""
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@contextmanager
def jupyter_lab(root: Path, state: Path, env: dict[str, str]) -> Iterator[Lab]:
    """Serve `root` with JupyterLab on a free port of 127.0.0.1; its config, data, runtime and
    IPython folders go under `state`, and its output to `state / "lab.log"`. `env` goes over
    this process's environment for the server and its kernels."""
    lab = Lab(url=f"http://127.0.0.1:{_free_port()}", token=secrets.token_hex(16))
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={lab.url.rsplit(':', 1)[1]}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={lab.token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    _write_settings(state / "config" / "lab" / "user-settings")
    with (state / "lab.log").open("wb") as log:
        server = subprocess.Popen(
            command,
            env=_lab_env(state, env),
            cwd=root,
            stdin=subprocess.DEVNULL,  # never asked "shut down this server (y/[n])?"
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(lab, server, state / "lab.log")
            yield lab
        finally:
            _stop(lab, server)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _lab_env(state: Path, env: dict[str, str]) -> dict[str, str]:
    """This environment with the Jupyter and IPython folders under `state`: nothing from the
    machine's home (settings, workspaces, kernels' profiles) reaches the test."""
    folders = {
        "JUPYTER_CONFIG_DIR": state / "config",
        "JUPYTER_DATA_DIR": state / "data",
        "JUPYTER_RUNTIME_DIR": state / "runtime",
        "IPYTHONDIR": state / "ipython",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        **{name: str(folder) for name, folder in folders.items()},
        "JUPYTER_PLATFORM_DIRS": "1",
        **env,
    }


def _write_settings(folder: Path) -> None:
    for plugin, values in SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_serving(lab: Lab, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while server.poll() is None and time.monotonic() < deadline:
        with suppress(OSError):
            _api(lab, "GET", "/api/status")
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"JupyterLab did not start (exit code {server.poll()}):\n{tail}")


def _api(lab: Lab, method: str, path: str) -> Any:
    request = urllib.request.Request(
        lab.url + path, method=method, headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _stop(lab: Lab, server: subprocess.Popen[bytes]) -> None:
    """Shut the server down through its API (it stops its kernels first); then make sure: the
    server and every process it started (kernels run in sessions of their own) are gone."""
    started = psutil.Process(server.pid).children(recursive=True) if server.poll() is None else []
    with suppress(OSError):
        _api(lab, "POST", "/api/shutdown")
    with suppress(subprocess.TimeoutExpired):
        server.wait(timeout=START_S / 2)
    if server.poll() is None:
        server.kill()
        server.wait()
    _, alive = psutil.wait_procs(started, timeout=START_S / 2)
    for process in alive:
        with suppress(psutil.NoSuchProcess):
            process.kill()


# -------------------------------------------------------------------- Chromium


@contextmanager
def chromium(profile: Path, *, width: int = 1400, height: int = 1600) -> Iterator[Chrome]:
    """Headless Chromium with a fresh profile in `profile`, its console log kept for
    `driver.get_log("browser")`."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


# -------------------------------------------------------------- the notebook


@dataclass(frozen=True)
class Card:
    """What one `.imagebatch-card` shows in the browser."""

    id: str
    status: str
    error: str
    visible: bool
    thumbnail: bool
    """An image is shown and has loaded (its `naturalWidth` is above 0)."""
    buttons: dict[str, bool]
    """Each visible button's label, and whether it is enabled."""


READ_CARDS = """
const shown = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
    && el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0;
return [...document.querySelectorAll('.imagebatch-card')].map((card) => {
    const labels = [...card.querySelectorAll(':scope > .widget-label')].map((l) => l.innerText);
    const images = [...card.querySelectorAll('img')].filter(
        (img) => img.getAttribute('src') && img.complete && img.naturalWidth > 0 && shown(img));
    const buttons = Object.fromEntries([...card.querySelectorAll('button')].filter(shown)
        .map((button) => [button.innerText.trim(), !button.disabled]));
    return {id: labels[0] ?? '', status: labels[1] ?? '', error: labels[3] ?? '',
            visible: shown(card), thumbnail: images.length > 0, buttons: buttons};
});
"""
NOTEBOOK = (
    "(window.jupyterapp && (window.jupyterapp.shell.currentWidget || Array.from("
    "window.jupyterapp.shell.widgets('main')).find((w) => w.hasClass('jp-NotebookPanel'))))"
)
"""The open notebook. JupyterLab 4.6.6 left the shell's current widget unset while the window
has no focus, as a headless browser's has not: then the notebook panel of the main area."""
KERNEL_IDLE = f"""
const notebook = {NOTEBOOK};
const kernel = notebook && notebook.sessionContext && notebook.sessionContext.session
    && notebook.sessionContext.session.kernel;
return Boolean(notebook && notebook.context.isReady && kernel && kernel.status === 'idle');
"""
CELLS = f"""
return {NOTEBOOK}.content.widgets.filter((cell) => cell.model.type === 'code').map((cell) => ({{
    count: cell.model.executionCount,
    errors: cell.model.outputs.toJSON().filter((output) => output.output_type === 'error')
        .map((output) => output.ename + ': ' + output.evalue),
}}));
"""

SHOW_BATCH = """
const batch = document.querySelector('.imagebatch-batch');
batch.scrollIntoView({block: 'center', behavior: 'instant'});
const box = batch.getBoundingClientRect();
const right = Math.max(...[...batch.querySelectorAll('.imagebatch-card')].map(
    (card) => card.getBoundingClientRect().right));
return {x: box.x, y: box.y, width: right - box.x, height: box.height};
"""


class NotebookPage:
    """A notebook open in JupyterLab, and the batch widget its cells draw."""

    def __init__(self, driver: Chrome) -> None:
        self.driver = driver
        self.log: list[str] = []
        """What the page logged to the browser's console so far (see `console`)."""

    def open(self, url: str, *, timeout: float) -> None:
        """Open `url` and wait until its kernel has started and is idle; the file browser is
        folded away, so the notebook has the window's width."""
        self.driver.get(url)
        self.wait_until(
            lambda: self._script(KERNEL_IDLE), timeout=timeout, what="the kernel to be idle"
        )
        self._script("jupyterapp.shell.collapseLeft()")

    def run_all(self, *, timeout: float) -> None:
        """Run every cell (JupyterLab's own command) and wait until all ran and the kernel is
        idle again; a cell that raised fails here, with its error."""
        self.driver.execute_script(
            f"{NOTEBOOK}.content.activate(); jupyterapp.commands.execute('notebook:run-all-cells')"
        )
        self.wait_until(self._all_ran, timeout=timeout, what="every cell to run")
        errors = [error for cell in self._script(CELLS) for error in cell["errors"]]
        assert not errors, f"cells raised: {errors}"

    def _all_ran(self) -> bool:
        cells = self._script(CELLS)
        return all(cell["count"] for cell in cells) and bool(self._script(KERNEL_IDLE))

    def cards(self) -> list[Card]:
        """Every card of the batch widget, read from the DOM in one go."""
        return [Card(**card) for card in self._script(READ_CARDS)]

    def card(self, item_id: str) -> Card:
        """The card that shows `item_id`."""
        matching = [card for card in self.cards() if card.id == item_id]
        assert len(matching) == 1, f"{len(matching)} cards show {item_id}"
        return matching[0]

    def button(self, item_id: str, css_class: str) -> WebElement:
        """The button with `css_class` on `item_id`'s card."""
        for card in self.driver.find_elements("css selector", ".imagebatch-card"):
            labels = card.find_elements("css selector", ":scope > .widget-label")
            if labels and labels[0].text == item_id:
                return card.find_element("css selector", f".{css_class}")
        raise AssertionError(f"no card shows {item_id}")

    def batch(self) -> WebElement:
        return self.driver.find_element("css selector", ".imagebatch-batch")

    def wait_until(self, condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Wait (bounded) until `condition()` is true, and return it; a timeout says `what` it
        waited for."""
        waiting = WebDriverWait(
            self.driver, timeout, poll_frequency=0.25, ignored_exceptions=(JavascriptException,)
        )
        return waiting.until(lambda _: condition(), message=f"waited {timeout:.0f}s for {what}")

    def console(self) -> list[str]:
        """Everything the page has logged to the browser's console, as `LEVEL message` lines."""
        entries = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        self.log += [f"{entry['level']} {entry['message']}" for entry in entries]
        return self.log

    def screenshot(self, path: Path, *, margin: int = 16) -> None:
        """A PNG of the batch widget (as wide as its cards), scrolled to the middle of the
        window, on a white `margin`."""
        box = self._script(SHOW_BATCH)
        capture = {"format": "png", "clip": {**box, "scale": 1}}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", capture)
        image = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
        ImageOps.expand(image, border=margin, fill="white").save(path, optimize=True)

    def _script(self, script: str) -> Any:
        return self.driver.execute_script(script)
