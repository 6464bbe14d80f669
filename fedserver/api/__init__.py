"""The Mastodon client API: the third edge beside web/ and federation/, calling the same services.

Adding an endpoint (one module per resource, e.g. api/media.py):
- declare it in the module's `routes = ApiRoutes()` table with its auth ("user", "app" or
  "public") and the OAuth scopes that grant it (any one suffices; a top-level scope grants its
  granular ones, services/scopes.py); routing.py checks both before the handler runs, and
  api/routes.py registers the table (also with a trailing slash);
- read parameters from `call.params` (query, form, multipart and JSON alike; `list("ids")` reads
  `ids[]`), raise errors.ApiError(status, message) for {"error": ...} answers;
- build entities in serializers.py, one function per entity, from what the services return
  (post cards carry visibility, blocks and mutes already applied); check them in tests against
  tests/api/entities.py (Mastodon.py's return_types.py);
- page lists with pagination.read_page (max_id/since_id/min_id over any newest-first service
  read) and pagination.link_header; ids are ids.encode/decode, dates ids.datetime_text.
A handler never writes SQL and never bypasses a service's rule.
"""
