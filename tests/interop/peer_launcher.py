"""Runs fediverse-pasture (an ActivityPub implementation by another author, on Quart and bovine) as
an independent peer on loopback for tests/interop. Run it with the peer virtualenv's python, never
fedserver's: it imports only fediverse_pasture, bovine and quart.

    python peer_launcher.py --app one_actor --port PORT --workdir DIR
    python peer_launcher.py --app verify_actor --port PORT --workdir DIR

one_actor serves a single actor at /actor (inbox /actor/inbox, WebFinger acct:actor@127.0.0.1:PORT)
that refuses unsigned inbox POSTs, and adds two test routes:

    GET  /_test/received   JSON list of every activity whose signature the peer verified
    POST /_test/send       {"inbox": URL, "type": "Follow"|"Accept"|"Undo"|"Create", ...}: the peer
                           builds the activity with bovine's factories, signs it with its key and
                           POSTs it; answers {"status": N, "body": ..., "activity": {...}}.
                           Follow/Accept/Undo take "object"; Create takes "content" (public unless
                           "public": false, extra "to"/"cc"); "with_id": false omits the ids.

verify_actor serves fediverse-pasture's six personas; GET /?actor_uri=... (Accept:
application/json) runs them against an actor.

Both bind 127.0.0.1 only (the package's own CLIs bind 0.0.0.0). The working folder holds the
peer's keys (data.toml) and bovine's JSON-LD context cache, so each run gets its own.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

import aiohttp
from bovine.activitystreams import factories_for_actor_object
from quart import Quart, jsonify, request

from fediverse_pasture.data_provider import DataProvider, bovine_actor_for_actor_data
from fediverse_pasture.server import BlueprintForActors

log = logging.getLogger("peer_launcher")


def build_one_actor_app(port: int) -> Quart:
    base = f"http://127.0.0.1:{port}"
    actor_id = f"{base}/actor"
    data = DataProvider.generate_and_load(False)
    # The package default lets unsigned POSTs in; the interop tests rely on it verifying them.
    data.one_actor.requires_signed_post_for_inbox = True
    received: list[dict[str, Any]] = []

    async def on_inbox(activity: dict[str, Any]) -> None:
        # BlueprintForActors awaits this only after build_validate_http_signature accepted the POST.
        log.info("verified inbox POST: %s %s", activity.get("type"), activity.get("id"))
        received.append(activity)

    app = Quart("fediverse_pasture_peer")
    app.register_blueprint(BlueprintForActors(actors=[data.one_actor], on_inbox=on_inbox).blueprint)

    @app.get("/_test/received")
    async def list_received():
        return jsonify(received)

    @app.post("/_test/send")
    async def send():
        order = await request.get_json(force=True)
        bovine_actor, actor_object = bovine_actor_for_actor_data(actor_id, data.one_actor)
        activity = _build_activity(actor_object.build(), base, order)
        async with aiohttp.ClientSession() as session:
            await bovine_actor.init(session=session)
            try:
                response = await bovine_actor.post(order["inbox"], activity)
                status, body = response.status, await response.text()
            except aiohttp.ClientResponseError as exc:  # bovine raises on a status >= 400
                status, body = exc.status, exc.message
        log.info("sent %s %s to %s: %s", activity.get("type"), activity.get("id"), order["inbox"], status)
        return jsonify({"status": status, "body": body, "activity": activity})

    return app


def _build_activity(actor_profile: dict[str, Any], base: str, order: dict[str, Any]) -> dict[str, Any]:
    """The activity as bovine's own factories shape it, so its wire format is the peer's, not ours."""
    # bovine leaves out ids unless given a generator; {"with_id": false} sends an id-less activity.
    id_generator = (lambda: f"{base}/objects/{uuid.uuid4()}") if order.get("with_id", True) else None
    activity_factory, object_factory = factories_for_actor_object(actor_profile, id_generator=id_generator)
    kind = order["type"]
    if kind == "Follow":
        return activity_factory.follow(order["object"]).build()
    if kind == "Accept":
        return activity_factory.accept(order["object"]).build()
    if kind == "Undo":
        return activity_factory.undo(order["object"]).build()
    if kind == "Create":
        note = object_factory.note(content=order["content"], to=set(order.get("to", [])),
                                   cc=set(order.get("cc", [])))
        if order.get("public", True):
            note = note.as_public()
        return activity_factory.create(note.build()).build()
    raise ValueError(f"cannot build a {kind!r} activity")


def build_verify_actor_app(port: int) -> Quart:
    from fediverse_pasture.verify_actor import build_app

    # Not get_app(): it passes three arguments to the four-argument build_app (TypeError in 0.2.25).
    return build_app(False, f"127.0.0.1:{port}", False, 10)


def stop_with_parent(parent_pid: int) -> None:
    """Shut down when the test process that started us is gone (killed before its teardown ran).
    A daemon thread, not a Quart background task: those delay shutdown by up to 5 s."""
    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                log.warning("parent %d is gone: stopping", parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)  # app.run() turns SIGTERM into a clean shutdown
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=("one_actor", "verify_actor"), default="one_actor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--parent-pid", type=int, help="stop when this process no longer exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.chdir(args.workdir)
    app = build_one_actor_app(args.port) if args.app == "one_actor" else build_verify_actor_app(args.port)
    if args.parent_pid:
        stop_with_parent(args.parent_pid)
    app.run(host="127.0.0.1", port=args.port, use_reloader=False)


if __name__ == "__main__":
    main()
