"""The person's settings: profile (name, bio, avatar, locked), training consent, and serving avatars."""
from __future__ import annotations

import re

from aiohttp import web

from fedserver.corpus import sync as corpus_sync
from fedserver.corpus.terms import CONSENT_TERMS, LICENSE_URLS, LICENSES, researcher_terms
from fedserver.services import (consent, consent_receipts, consent_text, corpus_custody, profile, profile_fields,
                                social_lists)
from fedserver.services.consent import ConsentError
from fedserver.services.profile import ProfileError
from fedserver.store import actors as actor_store
from fedserver.store import corpus as corpus_store
from fedserver.store import web as web_store
from fedserver.web.common import ctx_of, redirect, render, require_viewer, viewer_of

MEDIA_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|gif|webp|mp4|m4a|webm|weba|ogg|mp3|flac)$")


@require_viewer
async def profile_form(request: web.Request) -> web.Response:
    return await _profile_page(request)


async def _profile_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    ctx = ctx_of(request)
    viewer = viewer_of(request)
    assert viewer is not None
    actor = await actor_store.get_actor(ctx.db.reader, viewer.actor.id)
    bio = await actor_store.get_local_bio_source(ctx.db.reader, viewer.actor.id)
    assert actor is not None
    rows = [(f.get("name", ""), f.get("source", ""), f.get("verified_at")) for f in actor.fields]
    rows += [("", "", None)] * (profile_fields.MAX_FIELDS - len(rows))
    return await render(request, "settings/profile.html", status=status, actor=actor, bio=bio, error=error,
                        max_avatar_mb=profile.MAX_AVATAR_BYTES // (1024 * 1024), field_rows=rows,
                        hide_collections=await social_lists.hides_collections(ctx, actor))


@require_viewer
async def save_profile(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    try:
        await profile.update_profile(ctx_of(request), viewer.username, display_name=str(form.get("display_name", "")),
                                     bio=str(form.get("bio", "")), locked=form.get("locked") == "on",
                                     fields=[(str(form.get(f"field_name_{n}", "")), str(form.get(f"field_value_{n}", "")))
                                             for n in range(profile_fields.MAX_FIELDS)])
        await profile.set_account_flags(ctx_of(request), viewer.username, bot=form.get("bot") == "on")
    except ProfileError as exc:
        return await _profile_page(request, error=str(exc), status=400)
    return redirect("/settings/profile", flash="Your profile was saved.")


async def _save_picture(request: web.Request, field: str, store, *, missing: str, done: str) -> web.StreamResponse:
    """An uploaded profile picture (avatar or header) handed to its profile service function."""
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    upload = form.get(field)
    if not isinstance(upload, web.FileField):
        return await _profile_page(request, error=missing, status=400)
    data = upload.file.read(profile.MAX_AVATAR_BYTES + 1)
    try:
        await store(ctx_of(request), viewer.username, data)
    except ProfileError as exc:
        return await _profile_page(request, error=str(exc), status=400)
    return redirect("/settings/profile", flash=done)


@require_viewer
async def save_avatar(request: web.Request) -> web.StreamResponse:
    return await _save_picture(request, "avatar", profile.set_avatar, missing="choose a picture to upload",
                               done="Your picture was updated.")


@require_viewer
async def save_header(request: web.Request) -> web.StreamResponse:
    return await _save_picture(request, "header", profile.set_header,
                               missing="choose a header picture to upload", done="Your header picture was updated.")


async def media(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    name = request.match_info["name"]
    if not MEDIA_NAME.match(name):
        raise web.HTTPNotFound()
    row = await web_store.get_media(ctx.db.reader, name)
    path = ctx.media.path(name)
    if row is None or not path.is_file():
        raise web.HTTPNotFound()
    # Uploads are only ever served as the type Pillow or ffprobe decided (fedserver/images.py, av_media.py),
    # in a sandbox; FileResponse answers Range requests, which video and audio players rely on.
    return web.FileResponse(path, headers={
        "Content-Type": row["content_type"], "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "public, max-age=604800"})


@require_viewer
async def consent_page(request: web.Request) -> web.Response:
    return await _consent_page(request)


async def _consent_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    ctx = ctx_of(request)
    viewer = viewer_of(request)
    assert viewer is not None
    await corpus_sync.reconcile(ctx)
    state = await consent.get_state(ctx, viewer.actor.id)
    history = list(reversed(await consent.history(ctx, viewer.username)))
    in_corpus = await corpus_store.count_present_for_actor(ctx.db.reader, viewer.actor.id)
    custody = await corpus_custody.where_my_posts_went(ctx, viewer.actor.id)
    return await render(request, "settings/consent.html", status=status, state=state, history=history,
                        in_corpus=in_corpus, terms=CONSENT_TERMS, licenses=LICENSES, license_urls=LICENSE_URLS,
                        consent_text=consent_text.structure(CONSENT_TERMS),
                        license_meanings=consent_text.LICENSE_MEANINGS, error=error, custody=custody)


@require_viewer
async def save_consent(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    choice = str(form.get("train_ai", ""))
    if choice not in ("allow", "deny"):
        return await _consent_page(request, error="choose whether to allow or not", status=400)
    if choice == "allow" and form.get("terms_version") != CONSENT_TERMS.version:
        return await _consent_page(request, error="the explanation changed since you opened this page; read it again",
                                  status=409)
    try:
        await consent.set_training_consent(
            ctx, viewer.username, choice, license=str(form.get("license", "")) or None,
            scope=str(form.get("scope", "")) or None, include_unlisted=form.get("include_unlisted") == "on",
            source="self", note="web settings")
    except ConsentError as exc:
        return await _consent_page(request, error=str(exc), status=400)
    await corpus_sync.reconcile(ctx)
    message = ("Thank you. Your public posts may now be used to train AI models under the licence you chose."
               if choice == "allow" else "Done. Your posts will not be used to train AI models.")
    return redirect("/settings/consent", flash=message)


@require_viewer
async def consent_receipt(request: web.Request) -> web.Response:
    """The person's signed consent receipt (services/consent_receipts.py), as a file to keep."""
    ctx = ctx_of(request)
    viewer = viewer_of(request)
    assert viewer is not None
    body = await consent_receipts.consent_receipt(ctx, viewer.username)
    name = f"consent-receipt-{viewer.username}-{ctx.clock.now_iso()[:10]}.json"
    return web.Response(body=body, content_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


async def about_consent(request: web.Request) -> web.Response:
    return await render(request, "about_consent.html", terms=CONSENT_TERMS, researcher_terms=researcher_terms(
        ctx_of(request).settings.corpus.removal_deadline_days), consent_text=consent_text.structure(CONSENT_TERMS))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/about/consent", about_consent)
    r.add_get("/settings", settings_index)
    r.add_get("/settings/profile", profile_form)
    r.add_post("/settings/profile", save_profile)
    r.add_post("/settings/avatar", save_avatar)
    r.add_post("/settings/header", save_header)
    r.add_get("/settings/consent", consent_page)
    r.add_post("/settings/consent", save_consent)
    r.add_get("/settings/consent/receipt", consent_receipt)
    r.add_get("/media/{name}", media)


async def settings_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/settings/profile")
