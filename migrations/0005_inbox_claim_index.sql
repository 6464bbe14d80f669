-- The inbox worker's claim (store.inbox.claim_due_items): due pending items in arrival (id) order,
-- a batch at a time. Walking pending rows in id order stops after the batch; through
-- inbox_items_due (state, next_attempt_at) SQLite read and sorted every pending row on each claim,
-- ~2 ms per claim inside the write transaction with 8,000 queued (0.25 ms with this index), so a
-- backlog made every claim slower. inbox_items_due still serves store.inbox.next_due_ms.
CREATE INDEX inbox_items_pending ON inbox_items (state, id);
