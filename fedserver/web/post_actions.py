"""A post card's action buttons (Reply, Like, Boost, Bookmark, Pin, Report, Edit, Delete, the
training-corpus switch), built here rather than by the card template: a timeline renders them for
every card, and as template markup they were half of a 20-card page's rendering (1.2 of 2.4 ms on
bench/pages.py's home page: five forms a card, each value an escape call). Every value that is not
ours is escaped; the markup is what templates/_post.html had."""
from __future__ import annotations

import jinja2
from jinja2.filters import do_urlencode
from markupsafe import Markup, escape


def _fields(csrf: str, back: str) -> str:
    return (f'<input type="hidden" name="csrf_token" value="{csrf}">'
            f'<input type="hidden" name="back" value="{back}">')


@jinja2.pass_context
def post_actions(context, card, post_href: str, author_name: str, back_here: str) -> Markup:
    """The card's actions for a signed-in viewer (nothing without one). Forms go back to the card
    itself (back_here, its anchor) without JavaScript; Bookmark and Pin back to the page."""
    if not context.get("viewer"):
        return Markup("")
    post = card.post
    pid = int(post.id)
    csrf = escape(context.get("csrf_token"))
    here = str(context["request"].path_qs)
    to_card = _fields(csrf, escape(back_here))
    to_page = _fields(csrf, escape(here))
    name = escape(author_name)
    parts = [
        f'<div class="actions">'
        f'<a class="button secondary" href="{escape(post_href)}#reply" aria-label="Reply to {name}">Reply</a>',
        f'<form class="inline" method="post" action="/posts/{pid}/{"unlike" if card.liked else "like"}"'
        f' data-swap="post-{pid}">{to_card}'
        f'<button class="secondary like" type="submit" aria-pressed="{"true" if card.liked else "false"}">'
        f'<span aria-hidden="true">{"★" if card.liked else "☆"}</span> {"Liked" if card.liked else "Like"}</button>'
        f'</form>']
    if card.can_boost:
        # The pressed state is said in words: "Unboost" is what pressing it again does.
        parts.append(
            f'<form class="inline" method="post" action="/posts/{pid}/{"unboost" if card.boosted else "boost"}"'
            f' data-swap="post-{pid}">{to_card}'
            f'<button class="secondary boost{" pressed" if card.boosted else ""}" type="submit">'
            f'<span aria-hidden="true">↻</span> {"Unboost" if card.boosted else "Boost"}</button></form>')
    parts.append(
        f'<form class="inline" method="post" action="/posts/{pid}/{"unbookmark" if card.bookmarked else "bookmark"}">'
        f'{to_page}<button class="secondary" type="submit" aria-pressed="{"true" if card.bookmarked else "false"}">'
        f'{"Bookmarked" if card.bookmarked else "Bookmark"}</button></form>')
    if card.own and post.visibility in ("public", "unlisted"):
        parts.append(
            f'<form class="inline" method="post" action="/posts/{pid}/{"unpin" if card.pinned else "pin"}">'
            f'{to_page}<button class="secondary" type="submit">'
            f'{"Unpin from profile" if card.pinned else "Pin to profile"}</button></form>')
    if not card.own:
        parts.append(f'<a class="button secondary" href="/posts/{pid}/report?back={escape(do_urlencode(here))}"'
                     f' aria-label="Report this post by {name}">Report</a>')
    else:
        parts.append(f'<a class="button secondary" href="/posts/{pid}/edit">Edit</a>'
                     f'<a class="button secondary" href="/posts/{pid}/delete">Delete</a>')
        if card.may_exclude:
            excluded = post.corpus_excluded
            parts.append(
                f'<form class="inline" method="post" action="/posts/{pid}/corpus">{to_card}'
                f'<input type="hidden" name="exclude" value="{"0" if excluded else "1"}">'
                f'<button class="secondary" type="submit">'
                f'{"Let it into the training corpus" if excluded else "Keep out of the training corpus"}'
                f'</button></form>')
    parts.append("</div>")
    return Markup("".join(parts))


def install(env: jinja2.Environment) -> None:
    env.filters["post_actions"] = post_actions
