"""Pre-flight: everything about a job that can be checked before anything is written or paid.

`check_spec` runs before a job is recorded: the provider can be built (its key is set, its
options are valid), the model is one it knows, every item's request is one the model accepts
and every reference is a readable image. `check_webhook` checks the job's webhook: its secret is
set and its URL's host is one imagebatch may call. `provider_for` builds the job's provider;
commands that continue a job build it first, so a missing key changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import BadResponseError, ConfigError, UnusableFileError
from .estimate import listed_price
from .imaging import MAX_IMAGE_BYTES, inspect_image
from .presets import final_prompts
from .providers import registry
from .providers.base import GenerateRequest, Provider, ProviderConfig, ProviderFactory
from .references import dependencies, is_url, outside_refs
from .spec import ItemSpec, JobConfig, JobSpec
from .storage import read_regular
from .webhooks.addresses import check_url
from .webhooks.signing import load_secret

__all__ = ["check_spec", "check_webhook", "provider_for"]


def provider_for(
    config: JobConfig,
    env: Mapping[str, str],
    providers: Mapping[str, ProviderFactory] | None = None,
) -> Provider:
    """Build the job's provider (clients are made lazily, on first use).

    `providers` adds factories by name in this process, ahead of the registry.
    """
    provider_config = ProviderConfig(model=config.model, options=config.provider_options, env=env)
    if providers and config.provider in providers:
        return providers[config.provider](provider_config)
    return registry.create(config.provider, provider_config)


def check_spec(
    spec: JobSpec,
    env: Mapping[str, str],
    providers: Mapping[str, ProviderFactory] | None = None,
) -> dict[str, str]:
    """Raise `ConfigError` for anything that would fail every attempt of some item; return the
    prompt each item is to be sent (its preset applied), by item id.

    Writes nothing: the CLI calls it before it opens the workspace. Reads reference images and
    preset files, so call it from a thread when a loop is running.
    """
    prompts = final_prompts(spec, env)
    provider = provider_for(spec.config, env, providers)
    _check_model(spec.config, provider)
    ids = {item.id for item in spec.items}
    waits = dependencies(spec.items, spec.consistency, spec.anchor)
    for index, item in enumerate(spec.items):
        _check_references(spec, provider, index, item, waits[item.id], ids)
        params = spec.params_for(item).model_dump()
        prompt = prompts[item.id]
        request = GenerateRequest(job_id="check", item_id=item.id, prompt=prompt, **params)
        try:
            provider.check(request)
        except ConfigError as error:
            raise ConfigError(f"items[{index}] ({item.id}): {error}") from None
        if spec.limits.budget_usd is not None:
            _check_price(spec, provider, index, request)
    return prompts


async def check_webhook(config: JobConfig, env: Mapping[str, str]) -> None:
    """Raise `ConfigError` if the job's webhook cannot be used: its secret's variable is unset
    or malformed, or its host resolves to a local or private address (see `addresses`)."""
    if config.webhook is None:
        return
    load_secret(config.webhook, env)
    await check_url(config.webhook.url, env, "webhook.url")


def _check_model(config: JobConfig, provider: Provider) -> None:
    known = provider.capabilities.models
    if config.model is None or config.allow_unknown_model:
        return
    if not provider.capabilities.knows_model(config.model):
        raise ConfigError(
            f"model: {config.provider} has no model {config.model!r}; known: {', '.join(known)} "
            '(for a model not listed yet, set "allow_unknown_model": true)',
            option="allow_unknown_model",
        )


def _check_references(
    spec: JobSpec,
    provider: Provider,
    index: int,
    item: ItemSpec,
    waits: tuple[str, ...],
    ids: set[str],
) -> None:
    """The item's reference images (its own, and the items it waits for) can be sent: the
    provider takes them, and each file among them is a readable image."""
    if (item.references or waits) and not provider.capabilities.supports_references:
        where = f"items[{index}].references" if item.references else "consistency"
        raise ConfigError(
            f"{where}: provider {spec.provider!r} (model {spec.model or 'default'}) does "
            "not take reference images; remove them or choose another provider or model"
        )
    for ref in outside_refs(item, ids):
        if not is_url(ref):  # a URL is checked when it is fetched
            _check_reference(Path(ref), f"items[{index}].references")


def _check_price(spec: JobSpec, provider: Provider, index: int, request: GenerateRequest) -> None:
    """A job with a budget needs a listed price for every request."""
    if listed_price(provider, spec, request) is None:
        model = getattr(provider, "model", None) or spec.model or "its default model"
        raise ConfigError(
            f"limits.budget_usd: items[{index}] ({request.item_id}) has no known price on "
            f"{spec.provider} {model}; a budget needs prices: choose a model of the price "
            "table, or remove the budget",
            option="budget_usd",
        )


def _check_reference(path: Path, where: str) -> None:
    if not path.is_file():
        raise ConfigError(
            f"{where}: {str(path)!r} is neither an item id of this job nor a file; give an "
            "item's id, an http(s) URL or the path of an image file"
        )
    try:
        inspect_image(read_regular(path, MAX_IMAGE_BYTES))
    except (OSError, BadResponseError, UnusableFileError) as error:
        raise ConfigError(f"{where}: {path.name} is not a usable image ({error})") from None
