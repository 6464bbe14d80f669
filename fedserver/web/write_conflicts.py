"""A request whose write transaction PostgreSQL kept aborting for conflicts with other processes'
(transaction_retry.ConflictPersisted, or a deadlock in a transaction that is not retried) is
answered 503 with Retry-After: the database was busy, the request was fine and may be sent again
(nothing of the aborted transaction was kept). Not a 500: nothing is broken."""
from __future__ import annotations

import logging

from aiohttp import web

from fedserver.api.errors import error_response
from fedserver.api.routing import API_PREFIXES
from fedserver.transaction_retry import ConflictPersisted, is_transient_conflict

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
MESSAGE = "The server is busy with a conflicting change; please try again."


@web.middleware
async def write_conflicts(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        if not (isinstance(exc, ConflictPersisted) or is_transient_conflict(exc)):
            raise
        log.warning("%s %s: a write transaction conflicted with another process's: answered 503 (%s)",
                    request.method, request.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if request.path.startswith(API_PREFIXES):
            return error_response(503, MESSAGE, _headers=headers)
        return web.Response(status=503, text=MESSAGE, headers=headers)
