"""Webhooks: a job's events POSTed to the user's receiver, signed per Standard Webhooks.

```
models     the spec's `webhook` block, a message, an undelivered message (pure records)
signing    the secret from the environment and the `webhook-*` headers
addresses  which URLs may be called (no loopback, private or link-local hosts by default)
messages   the job's events turned into webhook messages (`job.progress` throttled)
policy     how hard messages are tried: the settings and the backoff rule
delivery   one message POSTed, with retries, backoff and jitter (loads aiohttp)
sender     the task beside a running job: follows its events, queues, delivers, keeps the rest
```

This package's `__init__` imports nothing, so the spec can use `models` without loading HTTP;
the orchestrator imports `sender` only for a job that has a webhook.
"""
