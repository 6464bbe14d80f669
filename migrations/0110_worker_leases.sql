-- Background work in several processes (`fedserver worker`, `serve --no-workers`; docs/scaling.md).
--
-- Periodic jobs that must run in one process at a time (corpus reconciliation, poll closing,
-- pruning) hold a named lease here while they run (store.worker_leases.acquire); a process that
-- dies loses it when locked_until passes (epoch ms), and another worker's job takes over.
CREATE TABLE worker_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    locked_until INTEGER NOT NULL
);

-- Which worker holds a queue row's lease: a worker renews (store.claims.renew_*) only the rows it
-- still holds, so one that stalled past its lease learns that another took the row over and does
-- not send or apply it a second time.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE inbox_items ADD COLUMN lease_owner TEXT;

-- The inbox claim skips signers with leased pending rows (store.inbox.claim_due_items: one signer's
-- activities stay in order across several inbox workers); those rows are few, found by locked_until.
CREATE INDEX inbox_items_leased ON inbox_items (locked_until, signer_uri);
