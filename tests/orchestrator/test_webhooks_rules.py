"""Webhooks without a network: the spec block's checks, the secret, the signature (checked by the
independent `standardwebhooks` package), which addresses are refused, the backoff, and the
events turned into messages (ids, filtering, `job.progress` at most once a second)."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from orchestrator.errors import ConfigError
from orchestrator.events import (
    ItemCompleted,
    ItemFailed,
    ItemGenerated,
    ItemStarted,
    JobFinished,
    JobStarted,
)
from orchestrator.preflight import check_webhook
from orchestrator.records import JobRecord, JobSnapshot
from orchestrator.spec import parse_spec
from orchestrator.states import ItemStatus
from orchestrator.testing.clock import FakeClock
from orchestrator.webhooks.addresses import refused_address
from orchestrator.webhooks.messages import MessageMaker
from orchestrator.webhooks.models import WEBHOOK_EVENTS, WebhookEventType, WebhookSpec
from orchestrator.webhooks.policy import DeliverySettings, next_delay
from orchestrator.webhooks.signing import load_secret, signed_headers

from .webhook_receiver import new_secret

ITEMS = [{"id": "a", "prompt": "x"}]


def _spec_error(webhook: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_spec({"key": "k", "webhook": webhook, "items": ITEMS}, "spec.json")
    return str(caught.value)


# ------------------------------------------------------------------ the spec


def test_a_webhook_block_is_accepted_with_every_event_by_default() -> None:
    spec = parse_spec(
        {"key": "k", "webhook": {"url": "https://h.example/x", "secret_env": "S"}, "items": ITEMS},
        "s",
    )
    assert spec.webhook is not None
    assert spec.webhook.events == WEBHOOK_EVENTS
    assert spec.config.webhook == spec.webhook  # kept on the job record


@pytest.mark.parametrize(
    ("webhook", "expected"),
    [
        ({"url": "ftp://h.example/x", "secret_env": "S"}, "webhook.url: must be an http://"),
        ({"url": "h.example/x", "secret_env": "S"}, "webhook.url: must be an http://"),
        ({"url": "https:///x", "secret_env": "S"}, "webhook.url: must name a host"),
        ({"url": "https://u:p@h.example/", "secret_env": "S"}, "must not carry a user name"),
        ({"url": "https://h.example", "secret_env": "1X"}, "webhook.secret_env: must be an env"),
        (
            {"url": "https://h.example", "secret_env": "S", "events": ["item.done"]},
            "webhook.events: unknown event 'item.done'; choose from job.started",
        ),
        (
            {"url": "https://h.example", "secret_env": "S", "events": []},
            "webhook.events: must not be empty",
        ),
        (
            {"url": "https://h.example", "secret_env": "S", "events": ["job.started"] * 2},
            "names an event twice",
        ),
        ({"url": "https://h.example"}, "webhook.secret_env: required field is missing"),
        ({"url": "https://h.example", "secret_env": "S", "secret": "x"}, "webhook.secret: unknown"),
        ("https://h.example", "webhook"),
    ],
)
def test_bad_webhook_blocks_are_one_line_naming_the_field(webhook: Any, expected: str) -> None:
    message = _spec_error(webhook)
    assert expected in message
    assert "\n" not in message


def test_a_secret_pasted_into_secret_env_is_refused_without_repeating_it() -> None:
    secret = new_secret()
    message = _spec_error({"url": "https://h.example", "secret_env": secret})
    assert "not the secret itself" in message
    assert secret not in message and secret[6:14] not in message


# ---------------------------------------------------------------- the secret


def test_the_secret_is_read_from_the_named_variable() -> None:
    spec = WebhookSpec(url="https://h.example", secret_env="HOOK")
    secret = new_secret()
    assert len(load_secret(spec, {"HOOK": secret})) == 24


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "$HOOK is not set; set it to the receiver's signing secret (whsec_...)"),
        ("", "$HOOK is not set"),
        ("c2VjcmV0c2VjcmV0c2VjcmV0", "does not hold a Standard Webhooks secret (whsec_...)"),
        ("whsec_not base64!!", "is not a usable secret"),
        ("whsec_c2hvcnQ=", "is not a usable secret"),  # 5 bytes
    ],
)
def test_a_missing_or_malformed_secret_is_a_config_error(value: str | None, expected: str) -> None:
    spec = WebhookSpec(url="https://h.example", secret_env="HOOK")
    env = {} if value is None else {"HOOK": value}
    with pytest.raises(ConfigError) as caught:
        load_secret(spec, env)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("webhook.secret_env")
    if value:
        assert value not in str(caught.value)


def test_signatures_verify_with_standardwebhooks() -> None:
    secret = new_secret()
    key = load_secret(WebhookSpec(url="https://h.example", secret_env="S"), {"S": secret})
    body = json.dumps({"type": "job.started", "data": {"note": "naïve ✓"}}, ensure_ascii=False)
    headers = signed_headers(key, "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body.encode(), headers) == json.loads(body)
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body.encode(), headers)  # another secret fails
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(body.encode() + b" ", headers)  # another body fails


# ----------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("addresses", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["::1"], "loopback"),
        (["93.184.216.34", "10.1.2.3"], "private"),
        (["192.168.0.10"], "private"),
        (["172.16.5.4"], "private"),
        (["169.254.169.254"], "link-local"),
        (["fe80::1%eth0"], "link-local"),
        (["0.0.0.0"], "unspecified"),
        (["224.0.0.1"], "multicast"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["fd00::1"], "private"),
        (["100.100.100.200"], "shared"),  # carrier-grade NAT; a cloud's metadata service
        (["100.64.0.1"], "shared"),
        (["2002:7f00:1::"], "loopback"),  # 6to4 around 127.0.0.1
        (["2002:a00:1::"], "private"),  # 6to4 around 10.0.0.1
    ],
)
def test_local_and_private_addresses_are_refused(addresses: list[str], kind: str) -> None:
    refused = refused_address(addresses)
    assert refused is not None and refused[1] == kind


def test_public_addresses_are_allowed() -> None:
    assert refused_address(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]) is None


def _config(url: str) -> Any:
    webhook = {"url": url, "secret_env": "S"}
    return parse_spec({"key": "k", "webhook": webhook, "items": ITEMS}, "s").config


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
    ],
)
async def test_preflight_refuses_local_urls_unless_allowed(url: str) -> None:
    env = {"S": new_secret()}
    with pytest.raises(ConfigError) as caught:
        await check_webhook(_config(url), env)
    message = str(caught.value)
    assert message.startswith("webhook.url: host ")
    assert "IMAGEBATCH_ALLOW_LOCAL_URLS=1" in message
    await check_webhook(_config(url), {**env, "IMAGEBATCH_ALLOW_LOCAL_URLS": "1"})


async def test_preflight_passes_a_public_address() -> None:
    await check_webhook(_config("https://93.184.216.34/hook"), {"S": new_secret()})


# ------------------------------------------------------------------- backoff


def test_backoff_grows_is_capped_and_ends_after_five_tries() -> None:
    settings = DeliverySettings(base_s=1.0, cap_s=8.0)
    rng = random.Random(3)
    delays = [next_delay(tries, settings, rng) for tries in range(1, 6)]
    assert delays[-1] is None  # the fifth try was the last
    waits = [delay for delay in delays if delay is not None]
    assert len(waits) == 4
    for tries, wait in enumerate(waits, start=1):
        ceiling = min(8.0, 2.0 ** (tries - 1))
        assert ceiling / 2 <= wait <= ceiling  # half sure, half jitter
    assert next_delay(1, settings, rng, retry_after=5.0) == 5.0  # the receiver's wait
    assert next_delay(1, settings, rng, retry_after=500.0) == 8.0  # cut to the cap


def test_jitter_spreads_the_waits() -> None:
    settings = DeliverySettings()
    rng = random.Random(1)
    assert len({next_delay(3, settings, rng) for _ in range(20)}) > 10


# ------------------------------------------------------------------ messages


def _maker(events: tuple[WebhookEventType, ...] = WEBHOOK_EVENTS, total: int = 10) -> MessageMaker:
    now = 1_700_000_000.0
    job = JobRecord(
        id="j",
        config=_config("https://h.example").model_copy(
            update={"webhook": WebhookSpec(url="https://h.example", secret_env="S", events=events)}
        ),
        total=total,
        counts={ItemStatus.PENDING: total},
        created_at=now,
        updated_at=now,
    )
    snapshot = JobSnapshot(job, [], 0)
    assert job.config.webhook is not None
    return MessageMaker.from_snapshot(
        job.config.webhook, snapshot, images_root=Path("/ws"), now=now
    )


def _completed(seq: int, item: str) -> ItemCompleted:
    return ItemCompleted(
        seq=seq, ts=1.7e9, job_id="j", item_id=item, status="completed", image_path=f"i/{item}.png"
    )


def test_events_become_messages_with_ids_made_from_the_event() -> None:
    maker = _maker()
    started = maker.messages(JobStarted(seq=1, ts=1.7e9, job_id="j", status="running"), 0.0)
    assert [(m.id, m.type) for m in started] == [("msg_j_1", "job.started")]
    generated = ItemGenerated(
        seq=2,
        ts=1.7e9,
        job_id="j",
        item_id="a",
        status="running",
        bytes=1,
        width=1,
        height=1,
        cost_usd=0.04,
    )
    assert maker.messages(generated, 0.0) == []
    done = maker.messages(_completed(3, "a"), 0.0)
    assert [(m.id, m.type) for m in done] == [
        ("msg_j_3", "item.completed"),
        ("msg_j_3-progress", "job.progress"),
    ]
    body = json.loads(done[0].body)
    assert body["type"] == "item.completed"
    assert body["timestamp"].endswith("Z")
    assert body["data"] == {
        "job_id": "j",
        "item_id": "a",
        "status": "completed",
        "image_path": str(Path("/ws/i/a.png")),
        "cost_usd": 0.04,
    }
    progress = json.loads(done[1].body)["data"]
    assert progress["done"] == 1 and progress["total"] == 10
    assert maker.messages(_completed(3, "a"), 5.0) == []  # a repeat makes nothing


def test_only_the_chosen_event_types_are_sent() -> None:
    maker = _maker(events=("item.failed", "job.finished"))
    assert maker.messages(JobStarted(seq=1, ts=1.7e9, job_id="j", status="running"), 0.0) == []
    assert maker.messages(_completed(2, "a"), 0.0) == []
    failed = ItemFailed(
        seq=3, ts=1.7e9, job_id="j", item_id="b", status="failed", kind="auth", message="no key"
    )
    (message,) = maker.messages(failed, 0.0)
    assert json.loads(message.body)["data"]["error"] == {"kind": "auth", "message": "no key"}
    finished = JobFinished(seq=4, ts=1.7e9, job_id="j", status="partial", counts={}, run_s=1.0)
    assert [m.type for m in maker.messages(finished, 0.0)] == ["job.finished"]
    started = ItemStarted(seq=5, ts=1.7e9, job_id="j", item_id="c", status="running", attempt=1)
    assert maker.messages(started, 0.0) == []


def test_progress_goes_out_at_most_once_a_second() -> None:
    clock = FakeClock()
    maker = _maker(events=("job.progress",), total=40)
    sent: list[float] = []
    for n in range(40):  # an item ends every 0.15 s
        clock.advance(0.15)
        if maker.messages(_completed(n + 1, f"i{n}"), clock.monotonic()):
            sent.append(clock.monotonic())
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert sent and all(gap >= 1.0 for gap in gaps)
    assert len(sent) >= 5  # it is throttled, not stopped (6 s of work)
