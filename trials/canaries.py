"""Canary secrets: API keys and a webhook secret that must never be written or shown, run
through jobs that fail in every way a key can be quoted (a server that echoes the whole key in
its 401 message, 429s and 500s, a provider that cannot be reached), with `-vv` logging to a
file, webhooks delivered to a local receiver, and every read-only command after.

Then every byte the runs left is searched for the canaries, raw, in base64 and URL-encoded:
each file of the workspace (SQLite files included), the log file, every command's stdout and
stderr, and every webhook request the receiver got (body and headers)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from urllib.parse import quote

from orchestrator.testing.fakeserver import FakeServerOptions
from orchestrator.testing.fakeserver.thread import ServerThread

from ._cli import Outcome, base_env, cli, in_parallel, write_spec
from ._serve import Answer, serving
from .registry import Result, Rounds, trial

RIGHT_KEY = "sk-the-one-the-server-takes"


def _canaries() -> dict[str, str]:
    tag = secrets.token_hex(8)
    hook_key = f"canary-webhook-{tag}".encode()
    return {
        "OPENAI_API_KEY": f"sk-canary-openai-{tag}",
        "GEMINI_API_KEY": f"canary-gemini-{tag}",
        "TRIAL_WEBHOOK_SECRET": "whsec_" + base64.b64encode(hook_key).decode(),
    }


def _forms(canary: str) -> list[bytes]:
    """The canary as it could be written: raw, base64, URL-encoded; a whsec secret's key too."""
    raw = canary.encode()
    forms = [raw, base64.b64encode(raw), quote(canary, safe="").encode()]
    if canary.startswith("whsec_"):
        forms += [canary.removeprefix("whsec_").encode(), base64.b64decode(canary[6:])]
    return forms


def _spec(folder: Path, name: str, provider: str, hook: str, count: int) -> Path:
    model = "gpt-image-1" if provider == "openai" else "gemini-2.5-flash-image"
    spec = {
        "key": name,
        "provider": provider,
        "model": model,
        "items": [{"id": f"p{n}", "prompt": f"page {n} of {name}"} for n in range(count)],
        "limits": {"concurrency": 4, "max_attempts": 3, "timeout_s": 20},
        "webhook": {"url": hook, "secret_env": "TRIAL_WEBHOOK_SECRET"},
    }
    return write_spec(folder, f"{name}.json", spec)


def _jobs(
    folder: Path, canaries: dict[str, str], urls: tuple[str, str, str], count: int
) -> list[Outcome]:
    """Four jobs on one workspace at once: OpenAI with 429s and 500s, OpenAI and Gemini against
    a server that refuses the key and quotes it whole, Gemini against a port nobody listens on."""
    ws = folder / "ws"
    hook, flaky, strict = urls
    common = {**canaries, "IMAGEBATCH_ALLOW_LOCAL_URLS": "1"}
    runs = [
        ("flaky", "openai", {"OPENAI_BASE_URL": flaky + "/v1"}),
        ("refused", "openai", {"OPENAI_BASE_URL": strict + "/v1"}),
        ("unreachable", "gemini", {"GEMINI_BASE_URL": "http://127.0.0.1:9"}),
        ("refusedg", "gemini", {"GEMINI_BASE_URL": strict}),
    ]

    def run(entry: tuple[str, str, dict[str, str]]) -> Outcome:
        name, provider, extra = entry
        # two items against the dead port: six failed calls, then the lane's circuit breaker
        # waits between probes (1 s, 2 s, ... a minute), which more items would sit through
        spec = _spec(folder, name, provider, hook, 2 if name == "unreachable" else count)
        log = ["-vv", "--log-file", str(folder / "imagebatch.log")]
        return cli(ws, *log, "run", str(spec), env=base_env(**common, **extra), timeout=90)

    ended = in_parallel(runs, run, workers=len(runs))
    env = base_env(**common)
    reads = [["list", "--json"], ["status", "--json"], ["stats", "--json"]]
    for name, _, _ in runs:
        for job in _job_ids(ws, env, name):
            reads += [["webhooks", job, "--json"], ["status", job]]
    ended += in_parallel(reads, lambda command: cli(ws, *command, env=env))
    return ended


def _job_ids(ws: Path, env: dict[str, str], key: str) -> list[str]:
    listed = cli(ws, "list", env=env).out
    return [word for word in listed.split() if word.startswith(f"{key}-")]


def _haystacks(folder: Path, ended: list[Outcome], hooks: list[bytes]) -> dict[str, bytes]:
    found = {str(path.relative_to(folder)): path.read_bytes() for path in _files(folder)}
    for n, outcome in enumerate(ended):
        found[f"command {n} stdout"] = outcome.out.encode()
        found[f"command {n} stderr"] = outcome.err.encode()
    for n, request in enumerate(hooks):
        found[f"webhook request {n}"] = request
    return found


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]


@trial(
    "canary secrets",
    "canary secrets through a full job with failures and debug logging: 0 occurrences anywhere "
    "in the workspace, logs or outputs",
)
def canary_secrets(rounds: Rounds) -> Result:
    folder = rounds.folder
    count = rounds.count(4, 30)
    canaries = _canaries()
    flaky = FakeServerOptions(rate_429=0.2, rate_500=0.2, retry_after_s=0.1, echo_key=True)
    strict = FakeServerOptions(require_key=RIGHT_KEY, echo_key=True)
    with (
        ServerThread(flaky) as flaky_server,
        ServerThread(strict) as strict_server,
        serving(lambda path: Answer(headers=())) as receiver,
    ):
        urls = (receiver.url, flaky_server.server.url, strict_server.server.url)
        ended = _jobs(folder, canaries, urls, count)
        hooks = [repr(headers).encode() + body for _, _, headers, body in receiver.requests]
    hay = _haystacks(folder, ended, hooks)
    leaks = [
        f"{variable} ({form[:12]!r}...) in {where}"
        for variable, canary in canaries.items()
        for form in _forms(canary)
        for where, data in hay.items()
        if form in data
    ]
    codes = [outcome.code for outcome in ended[:4]]
    problems = list(leaks)
    if codes[0] not in (0, 3) or any(code not in (3, 4) for code in codes[1:]) or not hooks:
        problems.append(f"the jobs did not fail as planned: exits {codes}, {len(hooks)} webhooks")
    return Result(
        f"{len(leaks)} occurrences of 3 canaries (raw, base64, URL-encoded) in {len(hay)} files, "
        f"outputs and webhook requests (jobs exit {codes}, {len(hooks)} webhook requests)",
        passed=not problems,
        details=tuple(problems[:10]),
    )
