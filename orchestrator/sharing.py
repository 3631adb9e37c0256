"""What the jobs of one orchestrator share: one lane per provider, model and key (`lanes.py`),
and the workspace's quota file, through which every process keeps a start rate between them.

Jobs on the same provider, model and key take turns from the same lane and count against the
same quota key. Keys are told apart by a short hash of the environment's key variables
(`key_fingerprint`), never by the key itself.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from .attempts import Quota
from .lanes import Lane, Lanes
from .quota import SharedQuota
from .spec import JobConfig

__all__ = ["Sharing", "key_fingerprint"]


class Sharing:
    """The lanes and the quota file the jobs of one orchestrator share. The environment is
    passed on each call: the orchestrator's may be replaced between jobs (a notebook does)."""

    def __init__(self, lanes: Lanes, quota_path: Path) -> None:
        self.lanes = lanes
        self.quota_path = quota_path
        self._quota_file: SharedQuota | None = None

    @property
    def quota_open(self) -> bool:
        """The quota file was opened (a job with a rate ran): `close` has work to do."""
        return self._quota_file is not None

    @contextlib.contextmanager
    def lane(self, config: JobConfig, env: Mapping[str, str]) -> Iterator[Lane]:
        """The lane of the job's provider and key while the job runs."""
        key = (config.provider, config.model, key_fingerprint(config.provider, env))
        limits = config.limits
        concurrency, rate, adaptive = limits.most_in_flight, limits.rate_per_minute, limits.adaptive
        lane = self.lanes.get(key, concurrency=concurrency, rate_per_minute=rate, adaptive=adaptive)
        try:
            yield lane
        finally:
            self.lanes.release(
                key, concurrency=concurrency, rate_per_minute=rate, adaptive=adaptive
            )

    def quota(self, config: JobConfig, env: Mapping[str, str]) -> Quota | None:
        """The job's share of the workspace's start rate, if it has a rate to keep (the quota
        file is opened on first use)."""
        rate = config.limits.rate_per_minute
        if rate is None:
            return None
        if self._quota_file is None:
            self._quota_file = SharedQuota(self.quota_path)
        fingerprint = key_fingerprint(config.provider, env)
        key = f"{config.provider}|{config.model or ''}|{fingerprint}"
        return Quota(self._quota_file, key, rate)

    def close(self) -> None:
        """Close the quota file, if it was opened (blocking: call it from a thread)."""
        if self._quota_file is not None:
            self._quota_file.close()


def key_fingerprint(provider: str, env: Mapping[str, str]) -> str:
    """Tells keys apart without keeping one: a short hash of the provider's key variables."""
    names = sorted(name for name in env if name.endswith(("_API_KEY", "_KEY")))
    secret = "|".join(env[name] for name in names)
    return hashlib.sha256(f"{provider}|{secret}".encode()).hexdigest()[:12]
