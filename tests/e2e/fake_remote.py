"""A hand-built ActivityPub peer for tests: a real aiohttp server on 127.0.0.1 that serves its actors,
their keys and WebFinger, signs what it sends with its own keys (cavage-12 or RFC 9421), and records
what arrives at its inboxes (verifying the sender's signature like a real peer would)."""
from __future__ import annotations

import base64
import email.utils
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from fedserver.activitypub.httpsig import (SignatureError, extract_signature, request_authority, sha256,
                                           sign_message, sign_request)
from fedserver.activitypub.keys import generate_rsa_private_key_pem, load_private_key, public_pem_from_private
from fedserver.activitypub.rfc9421 import sign_request_rfc9421

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS2 = "application/activity+json"

# RSA key generation costs ~30 ms; remotes reuse keys by position (distinct within one remote,
# shared between remotes, which live on different ports and never meet the same server state).
_KEY_POOL: list[str] = []


def _pooled_key(index: int) -> str:
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(generate_rsa_private_key_pem())
    return _KEY_POOL[index]


@dataclass
class RemoteActor:
    name: str
    private_key_pem: str
    gone: bool = False


@dataclass
class Received:
    """One POST that arrived at one of the remote's inboxes."""
    path: str
    headers: dict[str, str]
    body: bytes
    activity: dict[str, Any] | None
    key_id: str | None = None
    verified: bool = False
    error: str | None = None


@dataclass
class FakeRemote:
    """Start with `await FakeRemote.start("eve", "mallory")`; stop with `await remote.stop()`."""
    sock: socket.socket
    actors: dict[str, RemoteActor] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)  # paths of every GET served, in order
    runner: web.AppRunner | None = None
    http: aiohttp.ClientSession | None = None
    _keys_used: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def start(cls, *names: str) -> "FakeRemote":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        remote = cls(sock=sock)
        for name in names:
            remote.add_actor(name)
        app = web.Application()
        app.router.add_get("/.well-known/webfinger", remote._webfinger)
        app.router.add_get("/users/{name}", remote._actor_document)
        app.router.add_post("/users/{name}/inbox", remote._inbox)
        app.router.add_post("/inbox", remote._inbox)
        app.router.add_get("/{path:.*}", remote._document)
        remote.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await remote.runner.setup()
        await web.SockSite(remote.runner, sock).start()
        remote.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return remote

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self.sock.close()

    # --- who lives here ----------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"

    def actor_uri(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def key_id(self, name: str) -> str:
        return f"{self.actor_uri(name)}#main-key"

    def inbox_url(self, name: str) -> str:
        return f"{self.actor_uri(name)}/inbox"

    def add_actor(self, name: str) -> RemoteActor:
        actor = RemoteActor(name=name, private_key_pem=self._new_key())
        self.actors[name] = actor
        return actor

    def rotate_key(self, name: str) -> str:
        """Give the actor a new key pair (published from now on); returns the new private key."""
        self.actors[name].private_key_pem = self._new_key()
        return self.actors[name].private_key_pem

    def delete_actor(self, name: str) -> None:
        """From now on the actor (and its WebFinger) answers 410 Gone; it can still sign."""
        self.actors[name].gone = True

    def serve(self, doc: dict[str, Any]) -> None:
        """Publish an object at its id (which must be on this host)."""
        path = urlsplit(doc["id"]).path
        assert doc["id"] == self.base + path, "served documents must live on this remote"
        self.documents[path] = doc

    def fetch_count(self, name: str) -> int:
        return self.fetches.count(f"/users/{name}")

    def _new_key(self) -> str:
        pem = _pooled_key(self._keys_used)
        self._keys_used += 1
        return pem

    # --- activities --------------------------------------------------------------------------

    def new_id(self, name: str, kind: str = "activities") -> str:
        return f"{self.actor_uri(name)}/{kind}/{next(self._ids)}"

    def note(self, name: str, text: str, *, mention: str | None = None, public: bool = True) -> dict[str, Any]:
        """A Note by `name`; `mention` (an actor URI) is addressed and tagged the way Mastodon does it."""
        to = [AS_PUBLIC] if public else []
        cc = [f"{self.actor_uri(name)}/followers"]
        tag = []
        content = f"<p>{text}</p>"
        if mention:
            (cc if public else to).append(mention)
            tag.append({"type": "Mention", "href": mention, "name": f"@{mention.rsplit('/', 1)[-1]}"})
            content = f'<p><a href="{mention}" class="u-url mention">@{mention.rsplit("/", 1)[-1]}</a> {text}</p>'
        return {"id": self.new_id(name, "statuses"), "type": "Note", "attributedTo": self.actor_uri(name),
                "content": content, "to": to, "cc": cc, "tag": tag,
                "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def activity(self, name: str, activity_type: str, obj: Any, **extra: Any) -> dict[str, Any]:
        """An activity by `name` with a fresh id; to/cc are copied from an embedded object."""
        activity = {"@context": AS_CONTEXT, "id": self.new_id(name), "type": activity_type,
                    "actor": self.actor_uri(name), "object": obj}
        if isinstance(obj, dict):
            for key in ("to", "cc"):
                if key in obj:
                    activity[key] = obj[key]
        activity.update(extra)
        return activity

    def create_note(self, name: str, text: str, *, mention: str | None = None, public: bool = True) -> dict[str, Any]:
        return self.activity(name, "Create", self.note(name, text, mention=mention, public=public))

    # --- sending -----------------------------------------------------------------------------

    async def post(self, inbox_url: str, activity: dict[str, Any], *, as_user: str, key_of: str | None = None,
                   tamper_body: bool = False, date_offset: float = 0, content_type: str = AS2,
                   raw_body: bytes | None = None, scheme: str = "cavage", signed: bool = True,
                   algorithm: str | None = None, digest_name: str = "SHA-256", signed_for: str | None = None,
                   chunked: bool = False) -> tuple[int, Any]:
        """POST an activity as `as_user` and return (status, parsed JSON body or None).

        key_of: sign with this actor's private key instead of as_user's (keyId stays as_user's).
        tamper_body: change the body after signing. date_offset: seconds added to the signing time.
        raw_body: send these bytes instead of the JSON of `activity`. scheme: "cavage" | "rfc9421".
        algorithm: cavage algorithm label to send (e.g. "hs2019"). digest_name: the Digest header's
        algorithm spelling (e.g. "sha-256", as bovine writes it). signed_for: sign as if for this URL
        (another server's inbox) and replay the request, Host header included, to inbox_url.
        chunked: send without Content-Length (chunked transfer encoding).
        """
        assert self.http is not None, "remote not started"
        body = raw_body if raw_body is not None else json.dumps(activity).encode("utf-8")
        now = time.time() + date_offset
        headers: dict[str, str] = {"Content-Type": content_type}
        if signed:
            headers = self.sign("POST", signed_for or inbox_url, body, as_user=as_user, key_of=key_of, now=now,
                                content_type=content_type, scheme=scheme, algorithm=algorithm,
                                digest_name=digest_name)
        if tamper_body:
            tampered = json.loads(body)
            tampered["tampered"] = True  # still valid JSON: only the digest can tell
            body = json.dumps(tampered).encode("utf-8")
        data: Any = body
        if chunked:
            data = _chunks(body)
        async with self.http.post(URL(inbox_url, encoded=True), data=data, headers=headers,
                                  allow_redirects=False) as resp:
            text = await resp.read()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text.decode("utf-8", "replace")
            return resp.status, parsed

    def sign(self, method: str, url: str, body: bytes | None, *, as_user: str, key_of: str | None = None,
             now: float | None = None, content_type: str = AS2, scheme: str = "cavage",
             algorithm: str | None = None, digest_name: str = "SHA-256") -> dict[str, str]:
        """Headers for a request signed with key_of's (default as_user's) key under as_user's keyId."""
        pem = self.actors[key_of or as_user].private_key_pem
        key_id = self.key_id(as_user)
        if scheme == "rfc9421":
            return sign_request_rfc9421(method, url, body=body, key_id=key_id, private_key_pem=pem, now=now,
                                        content_type=content_type)
        assert scheme == "cavage", f"unknown signature scheme {scheme}"
        if digest_name == "SHA-256":
            headers = sign_request(method, url, body=body, key_id=key_id, private_key_pem=pem,
                                   content_type=content_type, now=now)
        else:
            headers = _sign_cavage(method, url, body, key_id=key_id, private_key_pem=pem, now=now,
                                   content_type=content_type, digest_name=digest_name)
        if algorithm is not None:
            # The algorithm label is not part of the signing string, so relabelling keeps it valid.
            headers["Signature"] = headers["Signature"].replace(
                'algorithm="rsa-sha256"', f'algorithm="{algorithm}"', 1)
        return headers

    # --- serving -----------------------------------------------------------------------------

    def actor_document(self, name: str) -> dict[str, Any]:
        uri = self.actor_uri(name)
        return {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": name, "name": name.title(),
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "following": f"{uri}/following", "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": self.key_id(name), "owner": uri,
                          "publicKeyPem": public_pem_from_private(self.actors[name].private_key_pem)},
        }

    async def _actor_document(self, request: web.Request) -> web.Response:
        self.fetches.append(request.path)
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.json_response({"error": "not found"}, status=404)
        if actor.gone:
            return _as2({"@context": AS_CONTEXT, "id": self.actor_uri(actor.name), "type": "Tombstone"}, 410)
        return _as2(self.actor_document(actor.name))

    async def _document(self, request: web.Request) -> web.Response:
        self.fetches.append(request.path)
        doc = self.documents.get(request.path)
        if doc is None:
            return web.json_response({"error": "not found"}, status=404)
        return _as2({"@context": AS_CONTEXT, **doc})

    async def _webfinger(self, request: web.Request) -> web.Response:
        self.fetches.append(request.path)
        resource = request.query.get("resource", "")
        if not resource:
            return web.json_response({"error": "resource parameter required"}, status=400)
        user, _, host = resource.removeprefix("acct:").lstrip("@").partition("@")
        actor = self.actors.get(user) if host.lower() == self.domain else None
        if actor is None:
            return web.json_response({"error": "not found"}, status=404)
        if actor.gone:
            return web.json_response({"error": "gone"}, status=410)
        jrd = {"subject": f"acct:{user}@{self.domain}",
               "links": [{"rel": "self", "type": AS2, "href": self.actor_uri(user)}]}
        return web.Response(body=json.dumps(jrd).encode(), content_type="application/jrd+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            activity = json.loads(body)
        except ValueError:
            activity = None
        record = Received(path=request.path, headers=dict(request.headers), body=body,
                          activity=activity if isinstance(activity, dict) else None)
        self.received.append(record)
        try:
            pending = extract_signature(request.method, request.raw_path, request.headers, body, scheme="http")
            record.key_id = pending.key_id
            pending.verify(await self._fetch_key(pending.key_id))
            record.verified = True
        except (SignatureError, ValueError, aiohttp.ClientError) as exc:
            record.error = str(exc)
            return web.json_response({"error": record.error}, status=401)
        return web.Response(status=202)

    async def _fetch_key(self, key_id: str) -> str:
        assert self.http is not None
        async with self.http.get(key_id.partition("#")[0], headers={"Accept": AS2}) as resp:
            if resp.status != 200:
                raise ValueError(f"key {key_id}: HTTP {resp.status}")
            doc = await resp.json(content_type=None)
        key = doc.get("publicKey") if isinstance(doc.get("publicKey"), dict) else doc
        if key.get("id") != key_id or not isinstance(key.get("publicKeyPem"), str):
            raise ValueError(f"{key_id} does not resolve to its key")
        return key["publicKeyPem"]


def _as2(doc: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(doc).encode("utf-8"), content_type=AS2)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1024):
        yield body[start:start + 1024]


def _sign_cavage(method: str, url: str, body: bytes | None, *, key_id: str, private_key_pem: str,
                 now: float | None, content_type: str, digest_name: str) -> dict[str, str]:
    """A second, independent cavage-12 signer for the spellings sign_request never produces
    (e.g. bovine's lower-case `sha-256=` Digest)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": request_authority(parts.scheme, parts.netloc),
               "Date": email.utils.formatdate(time.time() if now is None else now, usegmt=True)}
    if body is not None:
        headers["Digest"] = f"{digest_name}=" + base64.b64encode(sha256(body)).decode("ascii")
        headers["Content-Type"] = content_type
    lines = [f"(request-target): {method.lower()} {target}",
             *(f"{name.lower()}: {value}" for name, value in headers.items())]
    signature = sign_message(load_private_key(private_key_pem), "\n".join(lines).encode("utf-8"))
    signed = " ".join(["(request-target)", *(name.lower() for name in headers)])
    headers["Signature"] = (f'keyId="{key_id}",algorithm="rsa-sha256",headers="{signed}",'
                            f'signature="{base64.b64encode(signature).decode("ascii")}"')
    return headers
