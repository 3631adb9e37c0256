"""Reference images given as http(s) URLs: fetched once, when the job is created.

```python
fetched = await fetch_urls(spec, env)               # nothing written; ConfigError if one fails
spec = await asyncio.to_thread(keep_fetched, spec, fetched, workspace.references_dir)
```

Each URL's host must be a public address (`webhooks.addresses`, unless
`IMAGEBATCH_ALLOW_LOCAL_URLS=1`); redirects are not followed (one could lead to a local
address); the body is read with a size cap and a timeout, and must be an image. Every URL is
fetched before anything is written, so a bad one leaves the workspace as it was. The images are
kept under the workspace's `references/` by content hash and the job records their paths: a
resumed or retried job sends the same bytes, and the result cache sees the same request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadResponseError, ConfigError
from .imaging import MAX_IMAGE_BYTES, inspect_image
from .providers.capped import AnswerTooLarge, read_at_most
from .references import is_url, outside_refs
from .spec import JobSpec
from .storage import atomic_write, sha256_hex
from .webhooks.addresses import check_url

if TYPE_CHECKING:
    import aiohttp

__all__ = ["FETCH_TIMEOUT_S", "Fetched", "fetch_urls", "keep_fetched"]

FETCH_TIMEOUT_S = 30.0
"""Time one reference URL may take, connecting included."""
_PARALLEL = 4


@dataclass(frozen=True)
class Fetched:
    data: bytes
    ext: str


async def fetch_urls(spec: JobSpec, env: Mapping[str, str]) -> dict[str, Fetched]:
    """Every reference URL of the spec, fetched and checked; `ConfigError` naming the item and
    the URL if one cannot be used. Writes nothing."""
    ids = {item.id for item in spec.items}
    wanted: dict[str, str] = {}  # url -> where it is first named
    for index, item in enumerate(spec.items):
        for ref in outside_refs(item, ids):
            if is_url(ref):
                wanted.setdefault(ref, f"items[{index}].references")
    if not wanted:
        return {}
    import aiohttp  # only for jobs that name a URL

    limit = asyncio.Semaphore(_PARALLEL)
    async with aiohttp.ClientSession() as session:

        async def one(url: str, where: str) -> tuple[str, Fetched]:
            async with limit:
                await check_url(url, env, where)
                return url, await _get(session, url, where)

        pairs = await asyncio.gather(*(one(url, where) for url, where in wanted.items()))
    return dict(pairs)


def keep_fetched(spec: JobSpec, fetched: Mapping[str, Fetched], folder: Path) -> JobSpec:
    """Write the fetched images under `folder` by content hash and put their paths in the
    spec in place of the URLs. Blocking: call it from a thread."""
    if not fetched:
        return spec
    paths: dict[str, str] = {}
    for url, image in fetched.items():
        path = folder / f"{sha256_hex(image.data)}.{image.ext}"
        if not path.is_file():
            atomic_write(path, image.data, root=folder.parent)  # no link followed on the way
        paths[url] = str(path)
    items = tuple(
        item.model_copy(update={"references": tuple(paths.get(r, r) for r in item.references)})
        for item in spec.items
    )
    return spec.model_copy(update={"items": items})


async def _get(session: aiohttp.ClientSession, url: str, where: str) -> Fetched:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    try:
        async with session.get(url, timeout=timeout, allow_redirects=False) as response:
            if 300 <= response.status < 400:
                target = response.headers.get("Location", "elsewhere")
                raise ConfigError(
                    f"{where}: {url} redirects to {target}; give the final URL (redirects are "
                    "not followed)"
                )
            if response.status != 200:
                raise ConfigError(f"{where}: {url} answered HTTP {response.status}")
            data = await read_at_most(response, MAX_IMAGE_BYTES)
    except AnswerTooLarge:
        raise ConfigError(f"{where}: {url} is larger than {_mb(MAX_IMAGE_BYTES)}") from None
    except TimeoutError:
        raise ConfigError(f"{where}: {url} gave no image within {FETCH_TIMEOUT_S:g} s") from None
    except (aiohttp.ClientError, OSError) as error:
        raise ConfigError(f"{where}: {url} could not be fetched ({error})") from None
    try:
        info = await asyncio.to_thread(inspect_image, data)
    except BadResponseError as error:
        raise ConfigError(f"{where}: {url} is not a usable image ({error})") from None
    return Fetched(data, info.ext)


def _mb(size: int) -> str:
    return f"{size // (1024 * 1024)} MB"
