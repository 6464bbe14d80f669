"""Lists pages: a person's lists, creating, renaming and deleting one, its members (accounts they
follow) and its timeline at /lists/N."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import lists, timelines
from fedserver.services.lists import ListError, ListNotFound
from fedserver.web.common import ctx_of, redirect, render, require_viewer, training_choices, viewer_of
from fedserver.web.timeline import max_id_of

POLICY_LABELS = {"followed": "Replies to anyone I follow", "list": "Replies to other members of the list",
                 "none": "No replies to others"}


def _list_id(request: web.Request) -> int | None:
    value = request.match_info["list_id"]
    return int(value) if value.isdigit() and len(value) < 19 else None


async def _not_found(request: web.Request) -> web.Response:
    return await render(request, "public/not_found.html", status=404)


@require_viewer
async def index(request: web.Request) -> web.Response:
    return await _index_page(request)


async def _index_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    return await render(request, "lists/index.html", status=status, lists=await lists.lists_of(ctx, viewer.actor),
                        policies=POLICY_LABELS, error=error)


@require_viewer
async def create(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    form = await request.post()
    try:
        created = await lists.create_list(ctx, viewer.actor, str(form.get("title", "")),
                                          replies_policy=str(form.get("replies_policy", "list")),
                                          exclusive=form.get("exclusive") == "on")
    except ListError as exc:
        return await _index_page(request, error=str(exc), status=400)
    return redirect(f"/lists/{created.id}/edit", flash=f"The list “{created.title}” was created. Add accounts to it.")


@require_viewer
async def show(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    list_id = _list_id(request)
    if list_id is None:
        return await _not_found(request)
    try:
        lst = await lists.get_list(ctx, viewer.actor, list_id)
        page = await lists.timeline(ctx, viewer.actor, list_id, max_id=max_id_of(request),
                                    choices=training_choices(request))
    except ListNotFound:
        return await _not_found(request)
    return await render(request, "lists/show.html", lst=lst, page=page)


@require_viewer
async def edit_form(request: web.Request) -> web.StreamResponse:
    return await _edit_page(request)


async def _edit_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    list_id = _list_id(request)
    if list_id is None:
        return await _not_found(request)
    try:
        lst = await lists.get_list(ctx, viewer.actor, list_id)
        members = await lists.members(ctx, viewer.actor, list_id)
        candidates = await lists.followed_candidates(ctx, viewer.actor, list_id)
    except ListNotFound:
        return await _not_found(request)
    return await render(request, "lists/edit.html", status=status, lst=lst, members=members, candidates=candidates,
                        policies=POLICY_LABELS, error=error)


@require_viewer
async def update(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    list_id = _list_id(request)
    if list_id is None:
        return await _not_found(request)
    form = await request.post()
    try:
        await lists.update_list(ctx, viewer.actor, list_id, str(form.get("title", "")),
                                replies_policy=str(form.get("replies_policy", "list")),
                                exclusive=form.get("exclusive") == "on")
    except ListNotFound:
        return await _not_found(request)
    except ListError as exc:
        return await _edit_page(request, error=str(exc), status=400)
    return redirect(f"/lists/{list_id}/edit", flash="The list was saved.")


@require_viewer
async def delete(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    list_id = _list_id(request)
    if list_id is None:
        return await _not_found(request)
    try:
        await lists.delete_list(ctx, viewer.actor, list_id)
    except ListNotFound:
        return await _not_found(request)
    return redirect("/lists", flash="The list was deleted.")


@require_viewer
async def change_member(request: web.Request) -> web.StreamResponse:
    """Add (action=add) or remove (action=remove) the account actor_id."""
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    list_id = _list_id(request)
    if list_id is None:
        return await _not_found(request)
    form = await request.post()
    value = str(form.get("actor_id", ""))
    account = await timelines.actor_by_id(ctx, int(value)) if value.isdigit() and len(value) < 19 else None
    if account is None:
        return await _edit_page(request, error="choose an account you follow", status=400)
    try:
        if form.get("action") == "remove":
            await lists.remove_member(ctx, viewer.actor, list_id, account)
            message = f"{account.handle} was taken off the list."
        else:
            await lists.add_member(ctx, viewer.actor, list_id, account)
            message = f"{account.handle} was added to the list."
    except ListNotFound:
        return await _not_found(request)
    except ListError as exc:
        return await _edit_page(request, error=str(exc), status=400)
    return redirect(f"/lists/{list_id}/edit", flash=message)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/lists", index)
    r.add_post("/lists", create)
    r.add_get("/lists/{list_id}", show)
    r.add_get("/lists/{list_id}/edit", edit_form)
    r.add_post("/lists/{list_id}/edit", update)
    r.add_post("/lists/{list_id}/delete", delete)
    r.add_post("/lists/{list_id}/members", change_member)
