"""The admin page: instance settings, reports, accounts, invites, researchers, delivery health,
domain blocks."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import (account_admin, auth, corpus_custody, instance, remote_moderation, reports, researchers,
                                signups, status)
from fedserver.services import media_cache
from fedserver.services.accounts import AccountError
from fedserver.store import actors as actor_store
from fedserver.store import web as web_store
from fedserver.web.common import ctx_of, redirect, render, require_admin, viewer_of


@require_admin
async def dashboard(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    return await render(
        request, "admin/index.html",
        registrations=await auth.registration_mode(ctx),
        accounts=await actor_store.list_all_local_accounts(ctx.db.reader),
        pending_signups=await signups.list_pending(ctx),
        invites=await web_store.list_invites(ctx.db.reader),
        researchers=await researchers.list_researchers(ctx),
        overdue_researchers=await corpus_custody.overdue_researchers(ctx),
        queue=await status.queue_status(ctx),
        domain_blocks=await status.list_domain_blocks(ctx),
        reports=await reports.open_reports(ctx),
        remote_accounts=await remote_moderation.list_moderated(ctx),
        new_token=request.query.get("token_for"),
        media=await media_cache.usage(ctx),
        media_retention_days=ctx.settings.media.remote_retention_days,
    )


@require_admin
async def set_registrations(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await auth.set_registration_mode(ctx_of(request), str(form.get("registrations", "")))
    except AccountError as exc:
        return redirect("/admin", flash=str(exc))
    return redirect("/admin", flash="Sign-up setting saved.")


@require_admin
async def save_instance(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await instance.set_instance_info(ctx_of(request), name=str(form.get("name", "")),
                                         description=str(form.get("description", "")))
    except instance.InstanceSettingsError as exc:
        return redirect("/admin#instance", flash=str(exc))
    return redirect("/admin#instance", flash="Instance settings saved.")


@require_admin
async def create_invite(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        uses = max(1, min(100, int(str(form.get("max_uses", "1")))))
    except ValueError:
        uses = 1
    code = await auth.create_invite(ctx_of(request), max_uses=uses)
    return redirect("/admin#invites", flash=f"New invite code: {code}")


@require_admin
async def add_researcher(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        researcher, token = await researchers.add_researcher(ctx_of(request), str(form.get("name", "")).strip(),
                                                            contact=str(form.get("contact", "")).strip(),
                                                            organisation=str(form.get("organisation", "")),
                                                            purpose=str(form.get("purpose", "")),
                                                            scrub=form.get("scrub") == "on")
    except researchers.ResearcherError as exc:
        return await render(request, "error.html", status=400, message=str(exc))
    return await _token_page(request, researcher, token, rotated=False)


@require_admin
async def rotate_researcher_token(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        researcher, token = await researchers.rotate_token(ctx_of(request), str(form.get("name", "")))
    except researchers.ResearcherError as exc:
        return await render(request, "error.html", status=400, message=str(exc))
    return await _token_page(request, researcher, token, rotated=True)


async def _token_page(request: web.Request, researcher: researchers.Researcher, token: str, *, rotated: bool) -> web.Response:
    # The token is shown once, on this response only (only its hash is stored): nothing may keep a copy.
    response = await render(request, "admin/token.html", researcher=researcher, token=token, rotated=rotated)
    response.headers["Cache-Control"] = "no-store"
    return response


@require_admin
async def set_researcher_scrub(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        researcher = await corpus_custody.set_scrub(ctx_of(request), str(form.get("name", "")),
                                                    form.get("scrub") == "on")
    except corpus_custody.CustodyError as exc:
        return redirect("/admin#researchers", flash=str(exc))
    form_name = "scrubbed" if researcher.scrub else "as written"
    return redirect("/admin#researchers", flash=f"{researcher.name} now receives records {form_name}; they accept"
                                                " the data-use terms again.")


@require_admin
async def revoke_researcher(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await researchers.revoke_researcher(ctx_of(request), str(form.get("name", "")))
    except researchers.ResearcherError as exc:
        return redirect("/admin#researchers", flash=str(exc))
    return redirect("/admin#researchers", flash="Access revoked.")


@require_admin
async def resolve_report(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    value = str(form.get("report_id", ""))
    if not value.isdigit() or len(value) > 18:
        return redirect("/admin#reports", flash="No such report.")
    viewer = viewer_of(request)
    assert viewer is not None
    done = await reports.resolve(ctx_of(request), int(value), viewer.actor)
    return redirect("/admin#reports", flash="Report marked as handled." if done else "That report was already handled.")


@require_admin
async def suspend_account(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    suspend = form.get("action") != "restore"
    try:
        await auth.set_suspended(ctx_of(request), name, suspend)
    except AccountError as exc:
        return redirect("/admin#accounts", flash=str(exc))
    return redirect("/admin#accounts", flash=f"@{name} is {'suspended' if suspend else 'restored'}.")


# What the remote account form may ask for, and what the page then says happened.
_REMOTE_ACTIONS = {"suspend": "is suspended", "unsuspend": "is no longer suspended", "silence": "is silenced",
                   "unsilence": "is no longer silenced"}


@require_admin
async def moderate_remote_account(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    handle, action = str(form.get("handle", "")).strip(), str(form.get("action", ""))
    if not handle or action not in _REMOTE_ACTIONS:
        return redirect("/admin#remote-accounts", flash="Give an account like @someone@example.social and an action.")
    ctx = ctx_of(request)
    try:
        if action in ("suspend", "unsuspend"):
            actor = await getattr(remote_moderation, action)(ctx, handle)
        else:
            actor = await remote_moderation.silence(ctx, handle, on=action == "silence")
    except remote_moderation.ModerationError as exc:
        return redirect("/admin#remote-accounts", flash=f"That did not work: {exc}.")
    return redirect("/admin#remote-accounts", flash=f"{actor.handle} {_REMOTE_ACTIONS[action]}.")


@require_admin
async def answer_signup(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        if form.get("decision") == "approve":
            await signups.approve(ctx_of(request), name)
            return redirect("/admin#signups", flash=f"@{name} is approved and can sign in now.")
        await signups.reject(ctx_of(request), name)
    except AccountError as exc:
        return redirect("/admin#signups", flash=str(exc))
    return redirect("/admin#signups", flash=f"The sign-up of @{name} was rejected and deleted.")


@require_admin
async def set_admin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    on = form.get("admin") == "on"
    viewer = viewer_of(request)
    assert viewer is not None
    if not on and name.lower() == viewer.username:
        # Another admin (or `fedserver user set-admin`) can do it: nobody locks themselves out by a click.
        return redirect("/admin#accounts", flash="You cannot remove your own admin rights here.")
    try:
        await account_admin.set_admin(ctx_of(request), name, on)
    except AccountError as exc:
        return redirect("/admin#accounts", flash=str(exc))
    return redirect("/admin#accounts", flash=f"@{name} is {'an admin now' if on else 'no longer an admin'}.")


@require_admin
async def reset_password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        password = await account_admin.reset_password(ctx_of(request), name)
    except AccountError as exc:
        return redirect("/admin#accounts", flash=str(exc))
    # Shown once, on this response only (only its hash is stored): nothing may keep a copy.
    response = await render(request, "admin/password.html", name=name.lower(), password=password)
    response.headers["Cache-Control"] = "no-store"
    return response


@require_admin
async def domain_block(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    domain = str(form.get("domain", ""))
    try:
        if form.get("action") == "remove":
            unblocked = await status.unblock_domain(ctx_of(request), domain)
            return redirect("/admin#domains", flash=f"{unblocked} is no longer blocked.")
        block = await status.block_domain(ctx_of(request), domain, str(form.get("reason", ""))[:500])
    except (status.InvalidDomain, status.DomainNotBlocked) as exc:
        return redirect("/admin#domains", flash=f"Not done: {exc}.")
    return redirect("/admin#domains", flash=f"{block.domain} is blocked (and its subdomains): {block.follows_ended}"
                                             f" follows ended, {block.deliveries_cancelled} pending deliveries"
                                             " cancelled.")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", dashboard)
    r.add_post("/admin/registrations", set_registrations)
    r.add_post("/admin/instance", save_instance)
    r.add_post("/admin/invites", create_invite)
    r.add_post("/admin/researchers", add_researcher)
    r.add_post("/admin/researchers/revoke", revoke_researcher)
    r.add_post("/admin/researchers/scrub", set_researcher_scrub)
    r.add_post("/admin/researchers/rotate", rotate_researcher_token)
    r.add_post("/admin/reports/resolve", resolve_report)
    r.add_post("/admin/domain_blocks", domain_block)
    r.add_post("/admin/accounts/suspend", suspend_account)
    r.add_post("/admin/accounts/admin", set_admin)
    r.add_post("/admin/accounts/reset_password", reset_password)
    r.add_post("/admin/signups", answer_signup)
    r.add_post("/admin/remote_accounts", moderate_remote_account)
