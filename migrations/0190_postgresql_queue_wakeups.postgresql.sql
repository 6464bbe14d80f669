-- Queue wake-ups by LISTEN/NOTIFY (fedserver/queue_wakeups.py ListenWakeups): a row queued for a
-- worker sends NOTIFY fedserver_<queue> from the transaction that queues it, so it is delivered
-- when that commits (never before: a woken worker always finds the row) to every process listening,
-- whichever process or machine queued it (a web process, a worker, the CLI). Row triggers, not
-- statement triggers: a statement that queues nothing (ON CONFLICT DO NOTHING, a claim's UPDATE
-- of no row) must not wake anyone, or a worker would wake itself for ever. PostgreSQL sends one
-- notification per channel per transaction however many rows it queues.
CREATE FUNCTION fedserver_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fedserver_' || TG_ARGV[0], '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_items_notify AFTER INSERT ON inbox_items
    FOR EACH ROW EXECUTE FUNCTION fedserver_notify_queue('inbox');
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION fedserver_notify_queue('delivery');
CREATE TRIGGER push_deliveries_notify AFTER INSERT ON push_deliveries
    FOR EACH ROW EXECUTE FUNCTION fedserver_notify_queue('push');
CREATE TRIGGER remote_media_notify_insert AFTER INSERT ON remote_media
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION fedserver_notify_queue('media');
CREATE TRIGGER remote_media_notify_update AFTER UPDATE OF state ON remote_media
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued') EXECUTE FUNCTION fedserver_notify_queue('media');
CREATE TRIGGER poll_closings_notify AFTER INSERT ON poll_closings
    FOR EACH ROW EXECUTE FUNCTION fedserver_notify_queue('polls');
-- The streaming API's hubs (services/events.py) tail stream_events: a new event wakes them.
CREATE TRIGGER stream_events_notify AFTER INSERT ON stream_events
    FOR EACH ROW EXECUTE FUNCTION fedserver_notify_queue('stream');

-- The PostgreSQL inbox claim (store/claims.py) checks, per leased candidate, whether its signer has
-- a claimable pending row before it: a signer's pending rows in id order.
CREATE INDEX inbox_items_pending_signer ON inbox_items (signer_uri, id) WHERE state = 'pending';
