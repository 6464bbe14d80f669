"""The home and list timelines' entries (store.timelines.home_entries, store.lists.list_entries)
are exactly those of the plain rule, page after page. Home: the viewer's own posts, the visible
posts of accounts they follow (accepted, not on an exclusive list), those accounts' boosts of live
public or unlisted posts, and live public posts with a hashtag they follow, newest first. A list:
the same for its members the viewer follows, with replies as its replies policy says. Both read
only the authors whose newest candidates can be on the page (their plan); random graphs with many
authors, few authors, direct posts, replies, deletions and boosts check that the plan never drops
or adds an entry."""
from __future__ import annotations

import random

import pytest

from fedserver.db import migrate, open_database
from fedserver.store import lists as list_store
from fedserver.store import timelines as timeline_store
from tests import engines

THEN = "2026-01-01T00:00:00.000000Z"
VIEWER = 1
LIST_POLICIES = {2: "followed", 3: "list", 4: "none"}


def _graph(seed: int, authors: int, posts: int) -> dict:
    """Actors 1..authors+1 (1 is the viewer), follows, an exclusive list, posts, mentions, boosts and
    tags, with post and boost ids drawn from one increasing sequence (as time-ordered ids are)."""
    rng = random.Random(seed)
    others = list(range(2, authors + 2))
    follows = {a: rng.choice(["accepted"] * 4 + ["pending"]) for a in others if rng.random() < 0.8}
    exclusive_members = {a for a in others if rng.random() < 0.1}
    ids = iter(range(1000, 10 ** 9, 7))
    post_rows, mentions, boosts, tags = [], [], [], []
    posts_by_id: dict[int, tuple] = {}
    boosted_pairs: set[tuple[int, int]] = set()
    parents: dict[int, int | None] = {}
    for _ in range(posts):
        post_id, actor = next(ids), rng.choice([VIEWER] + others)
        # Newer posts come in bursts from one author, as on a real home timeline.
        visibility = rng.choice(["public"] * 5 + ["unlisted", "followers", "direct", "direct"])
        deleted = THEN if rng.random() < 0.1 else None
        parent = None
        if posts_by_id and rng.random() < 0.3:
            parent = rng.choice(list(posts_by_id)) if rng.random() < 0.9 else -1  # -1: a post not held here
        post_rows.append((post_id, f"https://a.example/notes/{post_id}", actor, visibility, THEN, THEN, THEN, deleted,
                          f"https://a.example/notes/{parent}" if parent else None))
        posts_by_id[post_id] = (actor, visibility, deleted)
        parents[post_id] = parent
        if visibility == "direct" and rng.random() < 0.5:
            mentions.append((post_id, VIEWER))
        if rng.random() < 0.3:
            tags.append((post_id, rng.choice(["herons", "otters", "rain"])))
        booster, boosted = rng.choice([VIEWER] + others), rng.choice(list(posts_by_id))
        if rng.random() < 0.25 and (booster, boosted) not in boosted_pairs:
            boosted_pairs.add((booster, boosted))
            boosts.append((next(ids), f"https://a.example/boosts/{len(boosts)}", booster, boosted, THEN, THEN))
    return {"others": others, "follows": follows, "exclusive": exclusive_members, "posts": post_rows,
            "by_id": posts_by_id, "parents": parents, "members": {a for a in others if rng.random() < 0.4},
            "mentions": mentions, "boosts": boosts, "tags": tags,
            "followed_tags": ["herons", "rain"]}


async def _store(db, graph: dict) -> None:
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO actors (id, uri, username, domain, created_at, updated_at)"
                             " VALUES (?, ?, ?, 'a.example', ?, ?)",
                             [(a, f"https://a.example/users/u{a}", f"u{a}", THEN, THEN)
                              for a in [VIEWER] + graph["others"]])
        await tx.executemany("INSERT INTO follows (uri, follower_id, followee_id, state, created_at, updated_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)",
                             [(f"https://a.example/follows/{a}", VIEWER, a, state, THEN, THEN)
                              for a, state in graph["follows"].items()])
        await tx.execute("INSERT INTO lists (id, owner_id, title, exclusive, created_at) VALUES (1, ?, 'x', 1, ?)",
                         (VIEWER, THEN))
        await tx.executemany("INSERT INTO list_members (list_id, actor_id, created_at) VALUES (1, ?, ?)",
                             [(a, THEN) for a in graph["exclusive"]])
        await tx.executemany("INSERT INTO posts (id, uri, actor_id, visibility, published_at, created_at,"
                             " updated_at, deleted_at, in_reply_to_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             graph["posts"])
        for list_id, policy in LIST_POLICIES.items():
            await tx.execute("INSERT INTO lists (id, owner_id, title, replies_policy, created_at) VALUES (?, ?, ?, ?, ?)",
                             (list_id, VIEWER, policy, policy, THEN))
            await tx.executemany("INSERT INTO list_members (list_id, actor_id, created_at) VALUES (?, ?, ?)",
                                 [(list_id, a, THEN) for a in graph["members"]])
        await tx.executemany("INSERT INTO post_mentions (post_id, actor_id) VALUES (?, ?)", graph["mentions"])
        await tx.executemany("INSERT INTO announces (id, uri, actor_id, post_id, published_at, created_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)", graph["boosts"])
        await tx.executemany("INSERT INTO post_tags (post_id, tag) VALUES (?, ?)", graph["tags"])
        await tx.executemany("INSERT INTO followed_tags (actor_id, tag, created_at) VALUES (?, ?, ?)",
                             [(VIEWER, tag, THEN) for tag in graph["followed_tags"]])


def _expected(graph: dict, before: int, limit: int) -> list[tuple[int, int, int | None]]:
    """The rule, read off the graph in Python: every entry, newest first, the first `limit`."""
    authors = {a for a, state in graph["follows"].items() if state == "accepted"} - graph["exclusive"] | {VIEWER}
    mentioned = {post_id for post_id, _ in graph["mentions"]}
    entries = []
    for post_id, (actor, visibility, deleted) in graph["by_id"].items():
        if (actor in authors and deleted is None
                and (actor == VIEWER or visibility != "direct" or post_id in mentioned)):
            entries.append((post_id, post_id, None))
    for boost_id, _, booster, post_id, _, _ in graph["boosts"]:
        _, visibility, deleted = graph["by_id"][post_id]
        if booster in authors and deleted is None and visibility in ("public", "unlisted"):
            entries.append((boost_id, post_id, booster))
    for post_id, tag in graph["tags"]:
        _, visibility, deleted = graph["by_id"][post_id]
        if tag in graph["followed_tags"] and visibility == "public" and deleted is None:
            entries.append((post_id, post_id, None))
    return sorted((e for e in entries if e[0] < before), key=lambda e: e[0], reverse=True)[:limit]


@pytest.mark.parametrize("seed, authors, posts", [(1, 60, 1500), (2, 8, 400), (3, 30, 60), (4, 150, 3000)])
async def test_every_page_holds_exactly_the_entries_of_the_plain_rule(tmp_path, seed, authors, posts):
    graph = _graph(seed, authors, posts)
    async with open_database(engines.database_target(tmp_path / "db.sqlite3")) as db:
        await migrate(db)
        await _store(db, graph)
        for limit in (20, 5):
            before, pages = None, 0
            while True:
                page = await timeline_store.home_entries(db.reader, VIEWER, max_id=before, limit=limit)
                got = [(e.sort_id, e.post_id, e.boosted_by_id) for e in page]
                assert got == _expected(graph, before if before is not None else 2 ** 62, limit), (limit, pages)
                pages += 1
                if len(got) < limit:
                    break
                before = got[-1][0]
            assert pages > 1  # the walk went past the first page, to the end of the timeline


def _expected_on_list(graph: dict, policy: str, before: int, limit: int) -> list[tuple[int, int, int | None]]:
    followed = {a for a, state in graph["follows"].items() if state == "accepted"}
    members = graph["members"] & followed
    mentioned = {post_id for post_id, _ in graph["mentions"]}
    entries = []
    for post_id, (actor, visibility, deleted) in graph["by_id"].items():
        if actor not in members or deleted is not None or (visibility == "direct" and post_id not in mentioned):
            continue
        parent = graph["parents"][post_id]
        if parent is not None:
            parent_author = graph["by_id"][parent][0] if parent in graph["by_id"] else None
            if not (parent_author == actor
                    or (policy == "followed" and parent_author is not None
                        and (parent_author == VIEWER or parent_author in followed))
                    or (policy == "list" and parent_author in members)):
                continue
        entries.append((post_id, post_id, None))
    for boost_id, _, booster, post_id, _, _ in graph["boosts"]:
        _, visibility, deleted = graph["by_id"][post_id]
        if booster in members and deleted is None and visibility in ("public", "unlisted"):
            entries.append((boost_id, post_id, booster))
    return sorted((e for e in entries if e[0] < before), key=lambda e: e[0], reverse=True)[:limit]


@pytest.mark.parametrize("seed, authors, posts", [(5, 80, 2000), (6, 10, 300)])
async def test_every_list_page_holds_exactly_the_entries_of_the_plain_rule(tmp_path, seed, authors, posts):
    graph = _graph(seed, authors, posts)
    async with open_database(engines.database_target(tmp_path / "db.sqlite3")) as db:
        await migrate(db)
        await _store(db, graph)
        for list_id, policy in LIST_POLICIES.items():
            lst = list_store.AccountList(id=list_id, owner_id=VIEWER, title=policy, replies_policy=policy, exclusive=0,
                                         created_at=THEN)
            for limit in (20, 5):
                before, pages = None, 0
                while True:
                    page = await list_store.list_entries(db.reader, lst, VIEWER, max_id=before, limit=limit)
                    got = [(e.sort_id, e.post_id, e.boosted_by_id) for e in page]
                    assert got == _expected_on_list(graph, policy, before if before is not None else 2 ** 62,
                                                    limit), (policy, limit, pages)
                    pages += 1
                    if len(got) < limit:
                        break
                    before = got[-1][0]
                assert pages > 1
