-- The audit trail partitioned by day (UTC), so that it can grow by millions of rows a day
-- and still answer by time, and so that retention drops whole partitions instead of
-- deleting rows. The existing rows move into the new partitions.
--
-- Partitions are named audit_events_YYYYMMDD and hold [day, day + 1) in UTC. Each
-- service creates them ahead (common/audit_partitions.py, at migration and hourly);
-- the default partition only catches what arrives when none is there, so an insert
-- never fails for want of a partition, and audit_ensure_partitions() moves such rows
-- into their day's partition when it creates it.
--
-- Indexes serve the API's queries (GET /audit-events): by time, and by principal,
-- target or action within time. There is no primary key: a unique index on a
-- partitioned table must contain the partition key, so it would cost every insert one
-- more index for nothing the API asks; `id` still comes from the sequence.

ALTER TABLE audit_events RENAME TO audit_events_0001;
ALTER INDEX audit_events_pkey RENAME TO audit_events_0001_pkey;
ALTER INDEX audit_events_by_time RENAME TO audit_events_0001_by_time;
ALTER INDEX audit_events_by_principal RENAME TO audit_events_0001_by_principal;
ALTER INDEX audit_events_by_target RENAME TO audit_events_0001_by_target;

CREATE TABLE audit_events (
    id         bigint NOT NULL DEFAULT nextval('audit_events_id_seq'),
    service    text NOT NULL,
    occurred   timestamptz NOT NULL DEFAULT now(),
    request_id text,
    principal  text,
    action     text NOT NULL,
    target     text NOT NULL,
    outcome    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (occurred);
ALTER SEQUENCE audit_events_id_seq OWNED BY audit_events.id;

CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

CREATE INDEX audit_events_by_time ON audit_events (service, occurred DESC, id DESC);
CREATE INDEX audit_events_by_principal ON audit_events (service, principal, occurred DESC);
CREATE INDEX audit_events_by_target ON audit_events (service, target, occurred DESC);
CREATE INDEX audit_events_by_action ON audit_events (service, action, occurred DESC);

-- The partitions of the UTC days first_day .. last_day that do not exist yet. A day whose
-- rows went to the default partition gets them moved into its new partition.
CREATE FUNCTION audit_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := first_day;
    part text;
    low timestamptz;
    high timestamptz;
    created integer := 0;
BEGIN
    WHILE day <= last_day LOOP
        part := 'audit_events_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            low := day::timestamp AT TIME ZONE 'UTC';
            high := (day + 1)::timestamp AT TIME ZONE 'UTC';
            -- Made standalone, then attached: ATTACH locks the parent less strongly than
            -- CREATE ... PARTITION OF, so inserts of other days go on meanwhile.
            EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS)', part);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (occurred >= %L AND occurred < %L)',
                           part, part || '_range', low, high);
            IF EXISTS (SELECT 1 FROM audit_events_default WHERE occurred >= low AND occurred < high) THEN
                EXECUTE format('WITH moved AS (DELETE FROM audit_events_default WHERE occurred >= %L AND occurred < %L
                                RETURNING *) INSERT INTO %I SELECT * FROM moved', low, high, part);
            END IF;
            EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, low, high);
            -- The CHECK let ATTACH skip its scan; the partition bound says the same from now on.
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Drop the partitions whose every event is older than keep_days days; the default
-- partition's rows that old are deleted. Returns how many partitions were dropped.
CREATE FUNCTION audit_drop_partitions(keep_days integer) RETURNS integer
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
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM audit_events_default WHERE occurred < cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END $$;

-- Partitions for every day that has events, and the days ahead; then the rows move over.
SELECT audit_ensure_partitions(
    coalesce((SELECT min(occurred AT TIME ZONE 'UTC')::date FROM audit_events_0001), (now() AT TIME ZONE 'UTC')::date),
    greatest((SELECT max(occurred AT TIME ZONE 'UTC')::date FROM audit_events_0001), (now() AT TIME ZONE 'UTC')::date) + 7);
INSERT INTO audit_events SELECT * FROM audit_events_0001;
DROP TABLE audit_events_0001;
