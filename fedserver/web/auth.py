"""Sign-up, sign-in, sign-out, password change and account deletion pages."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import auth
from fedserver.services.accounts import AccountError
from fedserver.services.throttles import Throttled
from fedserver.web.common import (SESSION_COOKIE, client_address, ctx_of, redirect, render, require_viewer,
                                  set_session_cookie, viewer_of)
from fedserver.web.return_paths import return_path


async def sign_in_form(request: web.Request) -> web.Response:
    if viewer_of(request):
        raise web.HTTPSeeOther("/home")
    return await render(request, "auth/sign_in.html", next=return_path(request.query.get("next")))


async def sign_in(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = return_path(str(form.get("next", "")))
    try:
        token = await auth.sign_in(ctx, username, password, client=client_address(request),
                                   user_agent=request.headers.get("User-Agent", ""))
    except Throttled as exc:
        response = await render(request, "auth/sign_in.html", status=429, error=str(exc), username=username,
                                next=target)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AccountError as exc:
        return await render(request, "auth/sign_in.html", status=401, error=str(exc), username=username, next=target)
    response = redirect(target)
    set_session_cookie(request, response, token)
    return response


async def sign_up_form(request: web.Request) -> web.Response:
    mode = await auth.registration_mode(ctx_of(request))
    return await render(request, "auth/sign_up.html", mode=mode, invite=request.query.get("invite", ""))


async def sign_up(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    invite, reason = str(form.get("invite", "")), str(form.get("reason", ""))
    mode = await auth.registration_mode(ctx)
    if password != str(form.get("password_confirm", "")):
        return await render(request, "auth/sign_up.html", status=400, mode=mode, invite=invite, username=username,
                            reason=reason, error="the two passwords differ")
    try:
        actor = await auth.sign_up(ctx, username, password, client=client_address(request), invite=invite or None,
                                   reason=reason)
    except Throttled as exc:
        response = await render(request, "auth/sign_up.html", status=429, mode=mode, invite=invite,
                                username=username, reason=reason, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AccountError as exc:
        return await render(request, "auth/sign_up.html", status=400, mode=mode, invite=invite, username=username,
                            reason=reason, error=str(exc))
    if actor is None:  # approval mode: nothing to sign in to until an admin approves it
        return await render(request, "auth/pending.html", username=username.strip().lower())
    # The password was set a moment ago: a session opens without a second Argon2 check (and without
    # the sign-in back-off, which an address's earlier failures may have started).
    token = await auth.open_session(ctx, actor, user_agent=request.headers.get("User-Agent", ""))
    response = redirect("/home", flash="Welcome! Your account is ready.")
    set_session_cookie(request, response, token)
    return response


@require_viewer
async def sign_out(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    await auth.sign_out(ctx_of(request), viewer)
    response = redirect("/", flash="You are signed out.")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@require_viewer
async def password_form(request: web.Request) -> web.Response:
    return await render(request, "settings/password.html")


@require_viewer
async def change_password(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    new = str(form.get("new_password", ""))
    if new != str(form.get("new_password_confirm", "")):
        return await render(request, "settings/password.html", status=400, error="the two new passwords differ")
    try:
        await auth.change_password(ctx_of(request), viewer, str(form.get("current_password", "")), new)
    except AccountError as exc:
        return await render(request, "settings/password.html", status=400, error=str(exc))
    return redirect("/settings/password", flash="Your password was changed; other devices were signed out.")


@require_viewer
async def delete_form(request: web.Request) -> web.Response:
    return await render(request, "settings/delete.html")


@require_viewer
async def delete_account(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    if str(form.get("confirm", "")) != viewer.username:
        return await render(request, "settings/delete.html", status=400,
                            error="type your username to confirm")
    try:
        await auth.delete_account(ctx_of(request), viewer.username, password=str(form.get("password", "")))
    except AccountError as exc:
        return await render(request, "settings/delete.html", status=400, error=str(exc))
    response = redirect("/", flash="Your account was deleted.")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/auth/sign_in", sign_in_form)
    r.add_post("/auth/sign_in", sign_in)
    r.add_get("/auth/sign_up", sign_up_form)
    r.add_post("/auth/sign_up", sign_up)
    r.add_post("/auth/sign_out", sign_out)
    r.add_get("/settings/password", password_form)
    r.add_post("/settings/password", change_password)
    r.add_get("/settings/delete", delete_form)
    r.add_post("/settings/delete", delete_account)
