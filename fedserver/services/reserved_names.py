"""Usernames nobody may sign up with: names that look official (admin, support, abuse...), the
instance actor's name, and every first path segment this server routes."""
from __future__ import annotations

# Names people would trust as speaking for the server or its operators (RFC 2142 role mailboxes
# among them), and the first segment of every route in fedserver/app.py, so that no account's
# name, profile or handle can be confused with a page or endpoint of the site.
# tests/e2e/test_moderation.py checks that every routed first segment is listed here.
RESERVED_USERNAMES: frozenset[str] = frozenset({
    # People would take these for the operators or the server itself.
    "admin", "administrator", "admins", "root", "superuser", "sysadmin", "system", "moderator", "moderators",
    "mod", "mods", "staff", "support", "help", "helpdesk", "info", "contact", "team", "official", "owner",
    "operator", "security", "abuse", "postmaster", "webmaster", "hostmaster", "noreply", "no_reply",
    "mailer_daemon", "daemon", "nobody", "anonymous", "everyone", "fedserver", "instance",
    "server", "localhost", "null",
    # First path segments of this server's routes (and common ones peers and browsers probe).
    "well_known", "webfinger", "host_meta", "nodeinfo", "actor", "inbox", "outbox", "users", "user",
    "activities", "statuses", "api", "oauth", "auth", "authorize_interaction", "settings", "static", "media",
    "about", "search", "home", "local", "public", "federated", "explore", "tags", "tag", "notifications",
    "posts", "follow", "unfollow", "block", "mute", "follow_requests", "remote", "ns", "robots_txt", "favicon",
    "favicon_ico",
    "login", "logout", "sign_in", "sign_up", "signup", "register", "account", "accounts", "relay",
    "web", "www", "mail", "ftp", "blocks", "mutes", "reports", "report", "invites", "invite", "corpus",
    "bookmarks",
    "lists", "list", "filters", "filter", "followed_tags",
})


def instance_actor_username(domain: str) -> str:
    """The instance actor's preferredUsername: its host name, as services.accounts.
    ensure_instance_actor names it (WebFinger answers acct:HOST@HOST with it, so no person may
    have that name)."""
    return domain.split(":")[0].lower()


def is_reserved(username: str, *, domain: str) -> bool:
    """Case-insensitive; `-` and `.` count as `_` so that route names like `.well-known` or
    `follow-requests` are covered in the only form a username can take."""
    name = username.strip().lower()
    folded = name.replace("-", "_").replace(".", "_").strip("_")
    return (name in RESERVED_USERNAMES or folded in RESERVED_USERNAMES
            or name == instance_actor_username(domain))
