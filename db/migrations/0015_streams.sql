-- Live streams (issue 16): an event cursor that follows commit order, what retention removed,
-- each slot's last exit, every instance's startup phases and their histograms.

-- Events get their cursor as their transaction commits, one transaction at a time: a
-- deferred trigger takes a transaction-level advisory lock and draws the cursor from a
-- sequence. The lock is held until the commit is visible, so the next transaction draws a
-- higher cursor only after this one's rows can be seen: a reader that has seen cursor C
-- never later finds a cursor below C. (The id, drawn at INSERT, follows insertion order: a
-- transaction that commits late would make a lower id appear after a higher one.)
ALTER TABLE events ADD COLUMN cursor bigint;
CREATE SEQUENCE events_cursor;
UPDATE events SET cursor = id;
SELECT setval('events_cursor', COALESCE((SELECT max(id) FROM events), 0) + 1, false);
CREATE UNIQUE INDEX events_by_cursor ON events (cursor);

CREATE FUNCTION events_take_cursor() RETURNS trigger AS $$
BEGIN
    -- the key is db.locks.EVENT_CURSOR
    PERFORM pg_advisory_xact_lock(7340003);
    UPDATE events SET cursor = nextval('events_cursor') WHERE id = NEW.id;
    -- one notification per transaction (Postgres folds equal ones), delivered at commit
    PERFORM pg_notify('events', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER events_take_cursor AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_take_cursor();

-- The highest cursor retention has removed: resuming after a lower one misses events (410).
CREATE TABLE event_horizon (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO event_horizon DEFAULT VALUES;

-- Each slot's last exit (kubectl's lastState.terminated): the kept container, its exit code
-- and why it ended (exited, OOM killed, health check failed).
ALTER TABLE slots
    ADD COLUMN last_exit_container text,
    ADD COLUMN last_exit_code integer,
    ADD COLUMN last_exit_reason text,
    ADD COLUMN last_exit_at timestamptz;

-- When each instance was planned, had its image, was created, started (Docker's
-- State.StartedAt), seen running and ready; whether its image was pulled for it.
CREATE TABLE instance_startup (
    container      text PRIMARY KEY,
    deployment     text,
    node           text NOT NULL,
    pulled         boolean NOT NULL DEFAULT false,
    planned_at     timestamptz NOT NULL,
    image_ready_at timestamptz,
    created_at     timestamptz,
    started_at     timestamptz,
    running_at     timestamptz,
    ready_at       timestamptz
);
CREATE INDEX instance_startup_deployment ON instance_startup (deployment);

-- harbormaster_instance_startup_seconds{phase,pulled}: cumulative bucket counts and sums,
-- added to once per instance when it is ready (they survive restarts and row pruning).
CREATE TABLE startup_histogram (
    phase  text NOT NULL,
    pulled boolean NOT NULL,
    le     double precision NOT NULL,   -- 'Infinity' is the +Inf bucket (the count)
    n      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (phase, pulled, le)
);
CREATE TABLE startup_sums (
    phase   text NOT NULL,
    pulled  boolean NOT NULL,
    seconds double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (phase, pulled)
);
