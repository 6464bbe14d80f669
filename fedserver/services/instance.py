"""The instance's public name and description: set in fedserver.toml, changeable on the admin page
(the database value wins once set)."""
from __future__ import annotations

from dataclasses import dataclass

from fedserver.context import Context
from fedserver.services.accounts import AccountError
from fedserver.store import corpus as state_store
from fedserver.store import web as web_store

REGISTRATION_KEY = "registrations"
NAME_KEY = "instance_name"
DESCRIPTION_KEY = "instance_description"
MAX_NAME = 100
MAX_DESCRIPTION = 2000


class InstanceSettingsError(Exception):
    """The new instance settings are not valid."""


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    description: str
    domain: str
    registrations: str


async def instance_info(ctx: Context) -> InstanceInfo:
    """Read on every page, in one query and not cached: an admin's change shows on the next page,
    whichever process serves it."""
    configured = ctx.settings.instance
    stored = await web_store.get_instance_settings(ctx.db.reader, (NAME_KEY, DESCRIPTION_KEY, REGISTRATION_KEY))
    return InstanceInfo(name=stored.get(NAME_KEY) or configured.name,
                        description=stored.get(DESCRIPTION_KEY) or configured.description,
                        domain=configured.domain,
                        registrations=stored.get(REGISTRATION_KEY) or configured.registrations)


async def set_instance_info(ctx: Context, *, name: str, description: str) -> None:
    name, description = name.strip(), description.strip()
    if not name or len(name) > MAX_NAME:
        raise InstanceSettingsError(f"the name must have 1 to {MAX_NAME} characters")
    if len(description) > MAX_DESCRIPTION:
        raise InstanceSettingsError(f"the description may have at most {MAX_DESCRIPTION} characters")
    async with ctx.db.transaction() as tx:
        await state_store.set_state(tx, NAME_KEY, name)
        await state_store.set_state(tx, DESCRIPTION_KEY, description)


REGISTRATION_MODES = ("open", "approval", "invite", "closed")


async def registration_mode(ctx: Context) -> str:
    """open | approval | invite | closed: the admin page may override the config file's value."""
    stored = await state_store.get_state(ctx.db.reader, REGISTRATION_KEY)
    return stored or ctx.settings.instance.registrations


async def set_registration_mode(ctx: Context, mode: str) -> None:
    if mode not in REGISTRATION_MODES:
        raise AccountError("registrations must be open, approval, invite or closed")
    async with ctx.db.transaction() as tx:
        await state_store.set_state(tx, REGISTRATION_KEY, mode)
