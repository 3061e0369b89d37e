-- Usage metering for billing (issue 17). Everything is keyed by (node, Docker id): names
-- are reused, and each engine names its own containers.

-- The sampler's cumulative counters (cpu_ns, net_rx, net_tx) and memory samples, per
-- container incarnation: the rollup reads each instance's samples newer than its cursor.
ALTER TABLE health_snapshots ADD COLUMN docker_id text;
CREATE INDEX health_snapshots_docker_id_at ON health_snapshots (docker_id, at)
    WHERE docker_id IS NOT NULL;

-- Every container the agents observed, with what usage is grouped by.
CREATE TABLE usage_instances (
    node        text NOT NULL,
    docker_id   text NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL,                    -- standalone or deployment
    deployment  text,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,  -- the user's labels (ours left out)
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    changed_at  timestamptz NOT NULL DEFAULT now(),   -- its runs, pauses or limits changed
    PRIMARY KEY (node, docker_id)
);
CREATE INDEX usage_instances_last_seen ON usage_instances (last_seen);

-- Runs (Docker's StartedAt .. FinishedAt) and pauses (the pause .. unpause events); an
-- open one has no end yet.
CREATE TABLE usage_spans (
    node        text NOT NULL,
    docker_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('run', 'pause')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    PRIMARY KEY (node, docker_id, kind, started_at)
);
CREATE INDEX usage_spans_open ON usage_spans (node, docker_id, kind) WHERE ended_at IS NULL;

-- The limits an instance runs with, from when they were first seen (a live update adds a
-- row); NULL: no limit, the configured default request applies.
CREATE TABLE usage_limits (
    node        text NOT NULL,
    docker_id   text NOT NULL,
    at          timestamptz NOT NULL,
    cpu_nanos   bigint,
    memory      bigint,
    PRIMARY KEY (node, docker_id, at)
);

-- When each node was declared down, and when it came back: a node that stops reporting is
-- billed until it is declared down, not after. Kept by the nodes table's status changes.
CREATE TABLE node_outages (
    node     text NOT NULL,
    down_at  timestamptz NOT NULL,
    up_at    timestamptz,
    PRIMARY KEY (node, down_at)
);

CREATE FUNCTION nodes_record_outage() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'down' AND OLD.status IS DISTINCT FROM 'down' THEN
        INSERT INTO node_outages (node, down_at) VALUES (NEW.name, COALESCE(NEW.down_since, now()))
            ON CONFLICT DO NOTHING;
    ELSIF OLD.status = 'down' AND NEW.status <> 'down' THEN
        UPDATE node_outages SET up_at = now() WHERE node = NEW.name AND up_at IS NULL;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER nodes_record_outage AFTER UPDATE OF status ON nodes
    FOR EACH ROW EXECUTE FUNCTION nodes_record_outage();

-- Per period length: periods starting before closed_until are closed. Metering starts when
-- its first rollup ran (metered_since): what ran before is not billed all at once then.
CREATE TABLE usage_rollups (
    period_seconds integer PRIMARY KEY,
    closed_until   timestamptz NOT NULL,
    metered_since  timestamptz NOT NULL,
    ran_at         timestamptz NOT NULL DEFAULT now()
);

-- Per base period length and instance: how far its samples were consumed (the cursor) and
-- the time amounts its closed periods were given.
CREATE TABLE usage_state (
    period_seconds  integer NOT NULL,
    node            text NOT NULL,
    docker_id       text NOT NULL,
    cursor_at       timestamptz,
    cursor_run      timestamptz,
    cpu_ns          bigint,
    net_rx          bigint,
    net_tx          bigint,
    memory          bigint,
    memory_until    timestamptz,
    billed_running_us     bigint NOT NULL DEFAULT 0,
    billed_paused_us      bigint NOT NULL DEFAULT 0,
    billed_cpu_request    numeric NOT NULL DEFAULT 0,
    billed_memory_request numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (period_seconds, node, docker_id)
);

-- Usage per period and instance, in core.metering's units (µs, core-ns, nanocore-µs,
-- byte-µs, bytes). Hourly rows come from the raw data, daily rows are sums of hourly ones.
CREATE TABLE usage_rows (
    period_seconds  integer NOT NULL,
    period_start    timestamptz NOT NULL,
    node            text NOT NULL,
    docker_id       text NOT NULL,
    closed          boolean NOT NULL DEFAULT false,
    running_us      bigint NOT NULL DEFAULT 0,
    paused_us       bigint NOT NULL DEFAULT 0,
    cpu_used_ns     bigint NOT NULL DEFAULT 0,
    cpu_request     numeric NOT NULL DEFAULT 0,
    memory_used     numeric NOT NULL DEFAULT 0,
    memory_request  numeric NOT NULL DEFAULT 0,
    net_rx          bigint NOT NULL DEFAULT 0,
    net_tx          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (period_seconds, period_start, node, docker_id)
);
CREATE INDEX usage_rows_open ON usage_rows (period_seconds, period_start) WHERE NOT closed;

-- A node's capacity per period (what it offers placement x the time it was up).
CREATE TABLE usage_node_rows (
    period_seconds  integer NOT NULL,
    period_start    timestamptz NOT NULL,
    node            text NOT NULL,
    closed          boolean NOT NULL DEFAULT false,
    up_us           bigint NOT NULL DEFAULT 0,
    cpu_capacity    numeric NOT NULL DEFAULT 0,   -- nanocore-µs
    memory_capacity numeric NOT NULL DEFAULT 0,   -- byte-µs
    PRIMARY KEY (period_seconds, period_start, node)
);

-- A closed period's row is final: a change to one is refused (a bug, loudly), only the
-- retention's delete may remove it.
CREATE FUNCTION usage_closed_rows_are_final() RETURNS trigger AS $$
BEGIN
    IF OLD.closed THEN
        RAISE EXCEPTION 'the usage row of a closed period is final (% s from %, %)',
            OLD.period_seconds, OLD.period_start, OLD.node;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER usage_rows_final BEFORE UPDATE ON usage_rows
    FOR EACH ROW EXECUTE FUNCTION usage_closed_rows_are_final();
CREATE TRIGGER usage_node_rows_final BEFORE UPDATE ON usage_node_rows
    FOR EACH ROW EXECUTE FUNCTION usage_closed_rows_are_final();
