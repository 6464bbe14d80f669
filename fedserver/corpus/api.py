"""The researcher API under /api/corpus/v1/: bearer-token authentication, the terms gate, rate
limiting and the pull log around each endpoint, and the HTTP shape of what services.researchers
answers. Errors are JSON bodies {"error": ...}."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from fedserver.client_address import request_client_address
from fedserver.context import CTX_KEY, Context
from fedserver.services import corpus_custody, researchers
from fedserver.store.researchers import Researcher

log = logging.getLogger(__name__)

PREFIX = "/api/corpus/v1"
NDJSON = "application/x-ndjson"
CURSOR_HEADER = "Corpus-Cursor"
# Answers depend on the token and the moment: never cached by anything in between.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
MAX_LOGGED_PARAMS = 500
CLIENT_CLOSED = 499  # logged when the researcher hung up mid-answer (nginx's convention)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class Pull:
    """One logged request: who asked, and how many records the answer carried."""
    ctx: Context
    researcher: Researcher
    records: int = 0
    # Records sent per author id, and the corpus cursor they were sent at (the receipts).
    receipts: dict[int, int] | None = None
    receipt_seq: int = 0


Handler = Callable[[web.Request, Pull], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={**NO_STORE, **(headers or {})})


def json_ok(doc: Any, *, media_type: str = "application/json; charset=utf-8") -> web.Response:
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, headers={**NO_STORE, "Content-Type": media_type})


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _challenge(token_sent: bool) -> dict[str, str]:
    # RFC 6750 §3: name the realm, and say invalid_token when a token was sent but refused.
    value = 'Bearer realm="corpus"' + (', error="invalid_token"' if token_sent else "")
    return {"WWW-Authenticate": value}


# Most specific first: TooManyIds is an InvalidRequest.
_STATUS_OF_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (researchers.TermsNotAccepted, 403), (researchers.TooManyIds, 413), (researchers.InvalidRequest, 400),
    (researchers.TermsMismatch, 409), (corpus_custody.CustodyError, 400))


def _status_of(exc: Exception) -> int:
    return next(status for kind, status in _STATUS_OF_ERROR if isinstance(exc, kind))


def endpoint(name: str, *, needs_terms: bool = True, gives_data: bool = False
             ) -> Callable[[Handler], Callable[[web.Request], Awaitable]]:
    """Wrap a handler with authentication, rate limiting, the terms gate, the removal-deadline gate
    (gives_data: the endpoint sends records) and the pull log with its per-author receipts."""
    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            ctx: Context = request.app[CTX_KEY]
            params = request.query_string[:MAX_LOGGED_PARAMS]
            token = _bearer_token(request)
            try:
                researcher = await researchers.authenticate(ctx, token)
            except researchers.RevokedToken as exc:
                await researchers.log_refused_pull(ctx, exc.researcher, name, params, 401)
                log.info("corpus API %s refused: %s's access is revoked", name, exc.researcher.name)
                return error_response(401, str(exc), _challenge(True))
            except researchers.InvalidToken as exc:
                log.info("corpus API %s refused from %s: %s", name, request_client_address(request), exc)
                return error_response(401, str(exc), _challenge(token is not None))
            try:
                pull_id = await researchers.begin_pull(ctx, researcher, name, params)
            except researchers.RateLimited as exc:
                return error_response(429, str(exc), {"Retry-After": str(exc.retry_after)})
            pull = Pull(ctx, researcher)
            status = 500
            try:
                if needs_terms:
                    researchers.require_terms(ctx, researcher)
                if gives_data:
                    await corpus_custody.require_removals_applied(ctx, researcher)
                response = await handler(request, pull)
                status = response.status
                return response
            except (researchers.TermsNotAccepted, researchers.InvalidRequest, researchers.TermsMismatch,
                    corpus_custody.CustodyError) as exc:
                status = _status_of(exc)
                return error_response(status, str(exc))
            except corpus_custody.RemovalsOverdue as exc:
                status = 403
                return web.json_response(exc.document(), status=403, headers=NO_STORE)
            except ApiError as exc:
                status = exc.status
                return error_response(exc.status, str(exc), exc.headers)
            except ConnectionResetError:
                status = CLIENT_CLOSED
                raise
            finally:
                await researchers.finish_pull(ctx, pull_id, status=status, records=pull.records, researcher=researcher,
                                              receipts=pull.receipts, receipt_seq=pull.receipt_seq)
                log.info("corpus API %s by %s: %s, %d records", name, researcher.name, status, pull.records)
        return wrapped
    return wrap


# --- endpoints ----------------------------------------------------------------------------------

def _terms_document(ctx: Context, researcher: Researcher) -> dict[str, Any]:
    terms = researchers.current_terms(ctx, researcher)
    accepted = None
    if researcher.terms_accepted_at is not None:
        accepted = {"version": researcher.terms_version, "sha256": researcher.terms_hash,
                    "at": researcher.terms_accepted_at,
                    "current": researchers.has_accepted_current_terms(ctx, researcher)}
    return {"version": terms.version, "sha256": terms.sha256, "text": terms.text, "accepted": accepted,
            "records_form": "scrubbed" if researcher.scrub else "as written",
            "removal_deadline_days": corpus_custody.deadline_days(ctx),
            "how_to_accept": f'POST {PREFIX}/terms with {{"version": ..., "sha256": ..., "accept": true}}'}


@endpoint("GET terms", needs_terms=False)
async def get_terms(request: web.Request, pull: Pull) -> web.StreamResponse:
    return json_ok(_terms_document(pull.ctx, pull.researcher))


@endpoint("POST terms", needs_terms=False)
async def post_terms(request: web.Request, pull: Pull) -> web.StreamResponse:
    body = await _json_object(request)
    researcher = await researchers.accept_terms(pull.ctx, pull.researcher, version=body.get("version"),
                                                sha256=body.get("sha256"), accept=body.get("accept"))
    return json_ok(_terms_document(pull.ctx, researcher))


@endpoint("GET records", gives_data=True)
async def get_records(request: web.Request, pull: Pull) -> web.StreamResponse:
    """The snapshot as JSON Lines, written batch by batch (the corpus is never held in memory)."""
    snapshot = await researchers.open_snapshot(pull.ctx, pull.researcher)
    pull.receipts, pull.receipt_seq = snapshot.tally.per_author, snapshot.cursor
    response = web.StreamResponse(headers={**NO_STORE, CURSOR_HEADER: str(snapshot.cursor)})
    response.content_type = NDJSON
    response.charset = "utf-8"
    response.enable_compression()
    await response.prepare(request)
    async for batch in snapshot.batches:
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in batch)
        await response.write(lines.encode("utf-8"))
        pull.records += len(batch)
    # No write_eof here: aiohttp ends the stream after the wrapper has logged the pull, so a
    # researcher who has the whole answer also finds it in the log.
    return response


@endpoint("GET changes", gives_data=True)
async def get_changes(request: web.Request, pull: Pull) -> web.StreamResponse:
    cursor = _int_query(request, "cursor", 0)
    limit = _int_query(request, "limit", researchers.CHANGES_DEFAULT_LIMIT)
    page = await researchers.changes_since(pull.ctx, cursor, limit, pull.researcher)
    pull.records = len(page.changes)
    pull.receipts, pull.receipt_seq = page.per_author, page.next_cursor
    return json_ok({"changes": page.changes, "next_cursor": page.next_cursor, "has_more": page.has_more})


@endpoint("POST compliance")
async def post_compliance(request: web.Request, pull: Pull) -> web.StreamResponse:
    ids = (await _json_object(request)).get("ids")
    if not isinstance(ids, list):
        raise ApiError(400, 'the body must be {"ids": [record ids or post URLs]}')
    results = await researchers.compliance(pull.ctx, ids)
    pull.records = len(results)
    return json_ok({"results": results})


@endpoint("GET removals")
async def get_removals(request: web.Request, pull: Pull) -> web.StreamResponse:
    """Removals only, never records: open to a researcher past a deadline, who must apply them."""
    page = await corpus_custody.removals_after(pull.ctx, _int_query(request, "cursor", 0),
                                               _int_query(request, "limit", corpus_custody.REMOVALS_DEFAULT_LIMIT))
    pull.records = len(page["removals"])
    return json_ok(page)


@endpoint("POST removals/ack")
async def post_removals_ack(request: web.Request, pull: Pull) -> web.StreamResponse:
    """The researcher confirms that every removal up to a cursor (or in a release) is applied."""
    body = await _json_object(request)
    if "release" in body:
        state = await corpus_custody.acknowledge_release(pull.ctx, pull.researcher, body["release"])
    elif "cursor" in body:
        state = await corpus_custody.acknowledge_cursor(pull.ctx, pull.researcher, body["cursor"])
    else:
        raise ApiError(400, 'the body must be {"cursor": N} or {"release": VERSION}')
    return json_ok({"acknowledged_cursor": state.cursor, "acknowledged_at": state.acknowledged_at,
                    "oldest_overdue_removal": state.overdue})


@endpoint("GET stats")
async def get_stats(request: web.Request, pull: Pull) -> web.StreamResponse:
    return json_ok(await researchers.corpus_stats(pull.ctx))


@endpoint("GET croissant.json")
async def get_croissant(request: web.Request, pull: Pull) -> web.StreamResponse:
    document, media_type = await researchers.croissant(pull.ctx)
    return json_ok(document, media_type=media_type)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _int_query(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/terms", get_terms)
    r.add_post(f"{PREFIX}/terms", post_terms)
    r.add_get(f"{PREFIX}/records", get_records)
    r.add_get(f"{PREFIX}/changes", get_changes)
    r.add_post(f"{PREFIX}/compliance", post_compliance)
    r.add_get(f"{PREFIX}/stats", get_stats)
    r.add_get(f"{PREFIX}/removals", get_removals)
    r.add_post(f"{PREFIX}/removals/ack", post_removals_ack)
    if researchers.croissant_available():
        r.add_get(f"{PREFIX}/croissant.json", get_croissant)
