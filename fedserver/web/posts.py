"""Writing and acting on posts from the web: compose, reply, edit, delete, like, boost, the per-post
training-corpus choice, and the page of any post we hold by its internal id."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import audience, av_uploads, interactions, polls, posting, reports, timelines
from fedserver.services.posting import Draft, Picture, PollDraft, PostingError
from fedserver.store.posts import Post
from fedserver.web.common import ctx_of, redirect, render, require_viewer, training_choices, viewer_of
from fedserver.web.return_paths import return_path
from fedserver.web.timeline import compose_values


async def _visible_post(request: web.Request, post_id: str) -> Post | None:
    """The post, if it exists, is live and the viewer may see it."""
    if not post_id.isdigit() or len(post_id) > 19:
        return None
    ctx, viewer = ctx_of(request), viewer_of(request)
    post = await timelines.post_by_id(ctx, int(post_id))
    if post is None or post.is_deleted:
        return None
    if not await audience.may_see(ctx, post, viewer.actor if viewer else None):
        return None
    return post


async def _not_found(request: web.Request) -> web.Response:
    return await render(request, "public/not_found.html", status=404)


def _page_path(post: Post, card: timelines.PostCard) -> str:
    return f"/@{card.author.username}/{post.id}" if post.is_local else f"/posts/{post.id}"


@require_viewer
async def compose(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    form = await request.post()
    back = return_path(form.get("back"))
    text, visibility = str(form.get("text", "")), str(form.get("visibility", "public"))
    content_warning = str(form.get("content_warning", "")).strip()
    choices = training_choices(request)
    consented = await timelines.training_allowed(ctx, viewer.actor, choices)
    exclude = consented and form.get("exclude_from_corpus") == "1"
    parent_card = None
    reply_to = str(form.get("reply_to", ""))
    if reply_to:
        parent = await _visible_post(request, reply_to)
        if parent is None:
            return await render(request, "error.html", status=404,
                                message="The post you are replying to is not available any more.")
        parent_card = await timelines.card_of(ctx, parent, viewer.actor, choices=choices)
    poll = _poll(form)
    try:
        await posting.create_post(ctx, viewer.username, Draft(
            text=text, visibility=visibility, content_warning=content_warning or None,
            reply_to=parent_card.post.uri if parent_card else None, exclude_from_corpus=exclude,
            pictures=_pictures(form), video_or_audio=_video_or_audio(ctx, form),
            language=str(form.get("language", "")) or None, poll=poll))
    except PostingError as exc:
        values = await compose_values(ctx, viewer, back=back, reply_to=parent_card, text=text,
                                      visibility=visibility, content_warning=content_warning, exclude=exclude,
                                      choices=choices, language=str(form.get("language", "")) or None, poll=poll)
        return await render(request, "posts/compose.html", status=400, compose=values, error=str(exc))
    return redirect(back, flash="Your reply is published." if parent_card else "Your post is published.")


def _poll(form) -> PollDraft | None:
    """The compose form's poll: its filled-in options (none: no poll), choice kind and duration."""
    options = tuple(str(value).strip() for value in form.getall("poll_option", []) if str(value).strip())
    if not options:
        return None
    try:
        expires_in = int(str(form.get("poll_expires_in", "86400")))
    except ValueError:
        expires_in = -1  # refused by posting with the allowed range
    return PollDraft(options=options, expires_in=expires_in, multiple=form.get("poll_multiple") == "1")


def _pictures(form) -> tuple[Picture, ...]:
    """The compose form's pictures (picture1..4 with their descriptions), empty fields left out."""
    pictures = []
    for number in range(1, posting.MAX_PICTURES + 1):
        upload = form.get(f"picture{number}")
        if isinstance(upload, web.FileField):
            data = upload.file.read(posting.MAX_PICTURE_BYTES + 1)
            if data:
                pictures.append(Picture(data, str(form.get(f"picture{number}_description", ""))))
    return tuple(pictures)


def _video_or_audio(ctx, form) -> Picture | None:
    """The compose form's video or audio file (media_file, with its description), or None."""
    upload = form.get("media_file")
    if not isinstance(upload, web.FileField):
        return None
    data = upload.file.read(av_uploads.max_bytes(ctx) + 1)
    return Picture(data, str(form.get("media_file_description", ""))) if data else None


async def show(request: web.Request) -> web.StreamResponse:
    """Any post we hold, by internal id. Local posts live at their public address; posts from
    other servers are shown only to people signed in here."""
    post = await _visible_post(request, request.match_info["post_id"])
    if post is None:
        return await _not_found(request)
    ctx, viewer = ctx_of(request), viewer_of(request)
    choices = training_choices(request)
    card = await timelines.card_of(ctx, post, viewer.actor if viewer else None, choices=choices)
    if post.is_local:
        raise web.HTTPFound(_page_path(post, card))
    if viewer is None:
        raise web.HTTPSeeOther(f"/auth/sign_in?next=/posts/{post.id}")
    thread = await timelines.thread(ctx, post, viewer.actor, choices=choices)
    values = await compose_values(ctx, viewer, back=request.path, reply_to=thread.focus, choices=choices)
    return await render(request, "posts/thread.html", thread=thread, compose=values)


def _post_action(action):
    """A form posted about one post the viewer can see (post_id in the URL): its handler gets the
    viewer, the form, where to go back to, and the post; an unknown post answers 404."""
    @require_viewer
    async def handler(request: web.Request) -> web.StreamResponse:
        viewer = viewer_of(request)
        assert viewer is not None
        form = await request.post()
        back = return_path(form.get("back"))
        post = await _visible_post(request, request.match_info["post_id"])
        if post is None:
            return await _not_found(request)
        return await action(request, viewer, form, back, post)
    return handler


def _interaction(action):
    @_post_action
    async def handler(request: web.Request, viewer, form, back: str, post: Post) -> web.StreamResponse:
        try:
            await action(ctx_of(request), viewer.username, post.uri)
        except interactions.InteractionError as exc:
            return redirect(back, flash=f"That did not work: {exc}.")
        return redirect(back)
    return handler


like = _interaction(interactions.like)
unlike = _interaction(interactions.unlike)
boost = _interaction(interactions.boost)
unboost = _interaction(interactions.unboost)


@_post_action
async def vote(request: web.Request, viewer, form, back: str, post: Post) -> web.StreamResponse:
    chosen = [int(value) for value in form.getall("choice", []) if isinstance(value, str) and value.isdigit()
              and len(value) < 4]
    try:
        await polls.vote(ctx_of(request), viewer.username, post, chosen)
    except polls.VoteError as exc:
        return redirect(back, flash=f"Your vote was not counted: {exc}.")
    return redirect(back, flash="Your vote was counted." if post.is_local else "Your vote was sent.")


async def _viewers_card(request: web.Request, *, own: bool) -> timelines.PostCard | None:
    """The post named in the URL as the signed-in person sees it, or None: with own=True only their
    own post (to edit or delete), with own=False only someone else's live post (to report)."""
    viewer = viewer_of(request)
    assert viewer is not None
    post = await _visible_post(request, request.match_info["post_id"])
    if post is None or (post.actor_id == viewer.actor.id) != own or (not own and post.is_deleted):
        return None
    return await timelines.card_of(ctx_of(request), post, viewer.actor, choices=training_choices(request))


@require_viewer
async def report_form(request: web.Request) -> web.Response:
    card = await _viewers_card(request, own=False)
    if card is None:
        return await _not_found(request)
    return await render(request, "posts/report.html", card=card, back=return_path(request.query.get("back")))


@require_viewer
async def report(request: web.Request) -> web.StreamResponse:
    card = await _viewers_card(request, own=False)
    if card is None:
        return await _not_found(request)
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    back = return_path(form.get("back"))
    try:
        forwarded = await reports.report_post(ctx_of(request), viewer.username, card.post,
                                              str(form.get("comment", "")), forward=form.get("forward") == "1")
    except reports.ReportError as exc:
        return redirect(back, flash=f"The report was not made: {exc}.")
    also = f" and, without your name, to {card.author.domain}" if forwarded else ""
    return redirect(back, flash=f"Thank you. Your report went to this server's admins{also}.")


@require_viewer
async def edit_form(request: web.Request) -> web.Response:
    card = await _viewers_card(request, own=True)
    if card is None:
        return await _not_found(request)
    return await render(request, "posts/edit.html", post=card.post, text=card.post.source_text or card.post.content_text,
                        content_warning=card.post.summary or "", back=_page_path(card.post, card))


@require_viewer
async def edit(request: web.Request) -> web.StreamResponse:
    card = await _viewers_card(request, own=True)
    if card is None:
        return await _not_found(request)
    form = await request.post()
    text, content_warning = str(form.get("text", "")), str(form.get("content_warning", "")).strip()
    try:
        await posting.edit_post(ctx_of(request), card.author.username, card.post.uri,
                                Draft(text=text, content_warning=content_warning or None))
    except PostingError as exc:
        return await render(request, "posts/edit.html", status=400, post=card.post, text=text,
                            content_warning=content_warning, back=_page_path(card.post, card), error=str(exc))
    return redirect(_page_path(card.post, card), flash="Your post was changed.")


@require_viewer
async def delete_form(request: web.Request) -> web.Response:
    card = await _viewers_card(request, own=True)
    if card is None:
        return await _not_found(request)
    return await render(request, "posts/delete.html", card=card, back=_page_path(card.post, card))


@require_viewer
async def delete(request: web.Request) -> web.StreamResponse:
    card = await _viewers_card(request, own=True)
    if card is None:
        return await _not_found(request)
    try:
        await posting.delete_post(ctx_of(request), card.author.username, card.post.uri)
    except PostingError as exc:
        return await render(request, "error.html", status=400, message=str(exc))
    return redirect(f"/@{card.author.username}", flash="Your post was deleted.")


@require_viewer
async def corpus_choice(request: web.Request) -> web.StreamResponse:
    card = await _viewers_card(request, own=True)
    if card is None:
        return await _not_found(request)
    form = await request.post()
    exclude = form.get("exclude") == "1"
    try:
        await posting.set_post_excluded(ctx_of(request), card.author.username, card.post.uri, exclude)
    except PostingError as exc:
        return await render(request, "error.html", status=400, message=str(exc))
    message = ("This post is kept out of the training corpus." if exclude
               else "This post may be part of the training corpus again.")
    return redirect(return_path(form.get("back"), _page_path(card.post, card)), flash=message)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/posts", compose)
    r.add_get("/posts/{post_id}", show)
    r.add_post("/posts/{post_id}/like", like)
    r.add_post("/posts/{post_id}/unlike", unlike)
    r.add_post("/posts/{post_id}/boost", boost)
    r.add_post("/posts/{post_id}/unboost", unboost)
    r.add_post("/posts/{post_id}/vote", vote)
    r.add_get("/posts/{post_id}/report", report_form)
    r.add_post("/posts/{post_id}/report", report)
    r.add_get("/posts/{post_id}/edit", edit_form)
    r.add_post("/posts/{post_id}/edit", edit)
    r.add_get("/posts/{post_id}/delete", delete_form)
    r.add_post("/posts/{post_id}/delete", delete)
    r.add_post("/posts/{post_id}/corpus", corpus_choice)
