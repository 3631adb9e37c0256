"""Reference-image and webhook URLs aimed at internal targets: the loopback interface in its
many spellings, private and link-local networks, the cloud metadata address, other schemes.

Without `IMAGEBATCH_ALLOW_LOCAL_URLS=1` each one, given as an item's reference or as the
webhook's URL, must be refused before anything is written (exit 2, one line naming the field)
and without a request reaching the local server the loopback ones point at. With it, the
loopback ones reach that server. Redirects are tested where they can be, offline: from an
allowed (local, allowed) first hop, a redirect must not be followed, for a reference or for a
webhook delivery."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ._cli import FAST, base_env, cli, error_line, in_parallel, spread, write_spec
from ._serve import Answer, Served, png, serving
from .registry import Result, Rounds, trial

ALLOW = "IMAGEBATCH_ALLOW_LOCAL_URLS"
SECRET = "whsec_" + base64.b64encode(b"trial-secret-0123456789").decode()


BOTH = ("reference", "webhook")
CALLED = ("could not be fetched", "answered HTTP", "gave no image", "not a usable image")
"""Reasons that show a request went out: a refusal must come before any."""


@dataclass(frozen=True)
class Target:
    url: str
    """`{port}` is the local server's port."""
    reaches: tuple[str, ...] = ()
    """Fields where this loopback spelling reaches the local server with ALLOW=1 (a webhook URL
    with a user name is refused whatever its host)."""


TARGETS = [
    Target("http://127.0.0.1:{port}/r.png", reaches=BOTH),
    Target("http://localhost:{port}/r.png", reaches=BOTH),
    Target("http://LOCALHOST.:{port}/r.png"),
    Target("http://127.1:{port}/r.png"),
    Target("http://[::1]:{port}/r.png"),
    Target("http://0.0.0.0:{port}/r.png"),
    Target("http://2130706433:{port}/r.png"),
    Target("http://0x7f000001:{port}/r.png"),
    Target("http://0177.0.0.1:{port}/r.png"),
    Target("http://[::ffff:127.0.0.1]:{port}/r.png"),
    Target("http://[::ffff:7f00:1]:{port}/r.png"),
    Target("http://[::127.0.0.1]:{port}/r.png"),
    Target("http://[64:ff9b::7f00:1]:{port}/r.png"),
    Target("http://[2002:7f00:1::]:{port}/r.png"),
    Target("http://example.com@127.0.0.1:{port}/r.png", reaches=("reference",)),
    Target("http://169.254.169.254/latest/meta-data/"),
    Target("http://[fd00:ec2::254]/latest/meta-data/"),
    Target("http://100.100.100.200/latest/meta-data/"),
    Target("http://100.64.0.1/r.png"),
    Target("http://10.0.0.1/r.png"),
    Target("http://172.16.0.1/r.png"),
    Target("http://192.168.1.1/r.png"),
    Target("http://[fe80::1]/r.png"),
    Target("http://[fc00::1]/r.png"),
    Target("http://224.0.0.1/r.png"),
    Target("http://255.255.255.255/r.png"),
    Target("file:///etc/passwd"),
    Target("ftp://127.0.0.1:{port}/r.png"),
    Target("gopher://127.0.0.1:{port}/_r"),
]


def _spec(case: Path, reference: str | None, hook: str | None) -> Path:
    item: dict[str, object] = {"id": "a", "prompt": "a lighthouse"}
    spec: dict[str, object] = {"key": "urls", "provider": "mock", "provider_options": FAST}
    if reference is not None:
        item["references"] = [reference]
    if hook is not None:
        spec["webhook"] = {"url": hook, "secret_env": "TRIAL_WEBHOOK_SECRET"}
    spec["items"] = [item]
    return write_spec(case, "spec.json", spec)


def _refused(case: Path, url: str, field: str, served: Served) -> str | None:
    """Without ALLOW: `url` as the reference or the webhook is refused, nothing written,
    nothing sent."""
    case.mkdir()
    reference, hook = (url, None) if field == "reference" else (None, url)
    spec = _spec(case, reference, hook)
    env = base_env(TRIAL_WEBHOOK_SECRET=SECRET)
    ended = cli(case / "ws", "run", str(spec), env=env, timeout=40, cwd=case)
    line = error_line(ended.err) or ""
    named = "items[0].references" if field == "reference" else "webhook.url"
    problems = []
    if ended.code != 2 or named not in line or any(said in line for said in CALLED):
        problems.append(f"exit {ended.code}: {ended.err.strip()[-200:]!r}")
    if os.path.lexists(case / "ws"):
        problems.append("the workspace was written")
    path = "/" + url.rsplit("/", 1)[-1]
    if any(request[1] == path for request in served.requests):
        problems.append("the local server was called")
    return f"not refused: {field} {url}: {'; '.join(problems)}" if problems else None


def _allowed(case: Path, url: str, field: str, served: Served) -> str | None:
    """With ALLOW=1 a loopback `url` reaches the local server (and the job completes)."""
    case.mkdir()
    before = len(served.requests)
    reference, hook = (url, None) if field == "reference" else (None, url)
    spec = _spec(case, reference, hook)
    env = base_env(TRIAL_WEBHOOK_SECRET=SECRET, **{ALLOW: "1"})
    ended = cli(case / "ws", "run", str(spec), env=env, timeout=40, cwd=case)
    if ended.code == 0 and len(served.requests) > before:
        return None
    return f"allowed {field} {url}: exit {ended.code}, {ended.err.strip()[-200:]!r}"


def _redirect(case: Path, field: str, served: Served) -> str | None:
    """From an allowed first hop, a redirect to an internal path is not followed: the
    reference is refused naming the redirect, and webhook posts never reach the target."""
    env = base_env(TRIAL_WEBHOOK_SECRET=SECRET, **{ALLOW: "1"})
    case.mkdir()
    first = f"{served.url}/redirect/{field}"
    hook = first if field == "webhook" else None
    spec = _spec(case, first if field == "reference" else None, hook)
    ended = cli(case / "ws", "run", str(spec), env=env, timeout=40, cwd=case)
    followed = [r for r in served.requests if r[1] == f"/internal/{field}"]
    hops = [r for r in served.requests if r[1] == f"/redirect/{field}"]
    problems = []
    if followed or not hops:
        problems.append(f"{len(hops)} first hops, {len(followed)} followed")
    want = 2 if field == "reference" else 0  # a webhook never fails the job
    if ended.code != want or (want == 2 and "redirect" not in (error_line(ended.err) or "")):
        problems.append(f"exit {ended.code}: {ended.err.strip()[-200:]!r}")
    return f"{field} redirect: {'; '.join(problems)}" if problems else None


def _numbered(target: Target, port: str, n: int) -> str:
    """The target's URL with a path of its own, to tell whether this one reached the server."""
    return target.url.format(port=port).replace("/r.png", f"/refused-{n}.png")


def _answers(path: str) -> Answer:
    if path.startswith("/redirect/"):
        where = "/internal/" + path.rsplit("/", 1)[1]
        return Answer(307, b"", (("Location", where),))
    return Answer(body=png())


@trial(
    "internal URLs",
    "reference-image and webhook URLs: a corpus of internal targets (127.0.0.1, [::1], "
    "169.254.169.254, decimal/hex IPs, IPv4-mapped IPv6, redirects to internal, file://): 100% "
    "refused unless IMAGEBATCH_ALLOW_LOCAL_URLS=1",
)
def internal_urls(rounds: Rounds) -> Result:
    cases = [(t, field) for t in TARGETS for field in ("reference", "webhook")]
    chosen = spread(cases, rounds.count(10, len(cases)))
    reachable = [(t, f) for t, f in cases if f in t.reaches]
    with serving(_answers) as served:
        port = served.url.rsplit(":", 1)[1]
        refusals = [
            partial(_refused, rounds.folder / f"case-{n:02d}", _numbered(t, port, n), f, served)
            for n, (t, f) in enumerate(chosen)
        ]
        allowed_ones = spread(reachable, rounds.count(1, len(reachable)))
        allowances = [
            partial(
                _allowed, rounds.folder / f"allowed-{n:02d}", t.url.format(port=port), f, served
            )
            for n, (t, f) in enumerate(allowed_ones)
        ]
        redirects = [partial(_redirect, rounds.folder / f"redirect-{f}", f, served) for f in BOTH]
        calls = redirects[::-1] + allowances + refusals  # the longest (a webhook's) first
        failures = in_parallel(calls, lambda call: call())
        followed = sum(r[1].startswith("/internal") for r in served.requests)
    failed = [failure for failure in failures if failure]
    refused = len(refusals) - sum(1 for f in failed if f.startswith("not refused"))
    allowed = len(allowances) - sum(1 for f in failed if f.startswith("allowed"))
    return Result(
        f"{refused}/{len(refusals)} internal URLs refused before any request (of {len(cases)}); "
        f"{allowed}/{len(allowances)} loopback ones allowed with {ALLOW}=1 (and both redirect "
        "first hops); "
        f"redirects to internal followed: {followed}",
        passed=not failed,
        details=tuple(failed),
    )
