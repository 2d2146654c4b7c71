-- The audit trail as evidence (common/audit_chain.py): each event is linked into one hash
-- chain per service, and the chain's head is written out, so that a changed, deleted,
-- inserted or moved event shows.
--
-- Inserts do not compute the link (a read's event is written by the read's own statement,
-- and serializing every read on one head row would make it a global bottleneck). Instead:
--  * xid: the inserting transaction's id (pg_current_xact_id(), which the insert has anyway).
--    A chainer takes the events whose xid is below the oldest running transaction's
--    (pg_snapshot_xmin): those can no longer change, nor can another of them appear, so
--    chaining them in (xid, id) order gives one order that a later pass only extends.
--  * seq, chain_prev, chain_hash: set by the chainer, one at a time per service (it holds the
--    service's head row locked), so concurrent writers never fork the chain.
-- Existing events (xid NULL) are chained first, in id order, by the first pass.

ALTER TABLE audit_events ADD COLUMN xid xid8, ADD COLUMN seq bigint, ADD COLUMN chain_prev bytea,
                         ADD COLUMN chain_hash bytea;
ALTER TABLE audit_events ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

-- What the chainer has yet to take (small: rows leave it within a second or so) ...
CREATE INDEX audit_events_unchained ON audit_events (service, xid, id) WHERE seq IS NULL;
-- ... and the chain in order, for `verify` and for the sinks' cursors.
CREATE INDEX audit_events_chain ON audit_events (service, seq) WHERE seq IS NOT NULL;

-- One row per service: the chain's head (the last link), how far chaining got, and where the
-- chain now starts after retention dropped its oldest partitions (the anchor: the last dropped
-- link, which the first kept event's chain_prev must equal).
CREATE TABLE audit_chain_heads (
    service         text PRIMARY KEY,
    seq             bigint NOT NULL DEFAULT 0,
    hash            bytea NOT NULL,
    horizon         xid8,          -- every event with a lower xid is chained (or was refused)
    chained_at      timestamptz,
    checkpointed_at timestamptz,   -- the head last written to the log
    anchor_seq      bigint NOT NULL DEFAULT 0,
    anchor_hash     bytea NOT NULL
);

-- Delivery to each sink (common/audit_stream.py): at least once, in chain order, from here.
-- One process at a time delivers to a sink: the one holding its lease.
CREATE TABLE audit_sink_cursors (
    service       text NOT NULL,
    sink          text NOT NULL,
    delivered_seq bigint NOT NULL DEFAULT 0,
    lease_owner   text,
    lease_until   timestamptz,
    head_sent_at  timestamptz,
    PRIMARY KEY (service, sink)
);

-- Retention (0002) now also moves each service's anchor past the links it drops, so that
-- verification of what is left starts where retention stopped; a gap anywhere else is a
-- deletion.
CREATE OR REPLACE FUNCTION audit_drop_partitions(keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cutoff date := ((now() AT TIME ZONE 'UTC') - make_interval(days => keep_days))::date;
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'audit_events'::regclass AND c.relname ~ '^audit_events_[0-9]{8}$'
           AND to_date(substr(c.relname, 14), 'YYYYMMDD') < cutoff
         ORDER BY c.relname
    LOOP
        EXECUTE format('UPDATE audit_chain_heads h SET anchor_seq = last.seq, anchor_hash = last.chain_hash
                          FROM (SELECT DISTINCT ON (service) service, seq, chain_hash FROM %I
                                 WHERE seq IS NOT NULL ORDER BY service, seq DESC) last
                         WHERE h.service = last.service AND last.seq > h.anchor_seq', part.relname);
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    WITH gone AS (DELETE FROM audit_events_default WHERE occurred < cutoff::timestamp AT TIME ZONE 'UTC'
                  RETURNING service, seq, chain_hash),
         last AS (SELECT DISTINCT ON (service) service, seq, chain_hash FROM gone
                   WHERE seq IS NOT NULL ORDER BY service, seq DESC)
    UPDATE audit_chain_heads h SET anchor_seq = last.seq, anchor_hash = last.chain_hash
      FROM last WHERE h.service = last.service AND last.seq > h.anchor_seq;
    RETURN dropped;
END $$;
