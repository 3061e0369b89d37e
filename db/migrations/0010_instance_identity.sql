-- One instance identity: an instance is (deployment, slot, incarnation). The incarnation is
-- a per-slot counter handed out here before the container is created, so two containers of
-- one slot can coexist and a create repeated after a worker died finds its container by
-- name. Every container has a role: active (a replica), warm (a paused pool member), kept
-- (dead, kept for its logs), stale (to be removed). The per-slot backoff moves here too.
CREATE TABLE slots (
    deployment       text NOT NULL,
    slot             integer NOT NULL,
    next_incarnation integer NOT NULL DEFAULT 1,
    failures         integer NOT NULL DEFAULT 0,
    last_failure_at  timestamptz,
    next_start_at    timestamptz,
    PRIMARY KEY (deployment, slot)
);
INSERT INTO slots (deployment, slot, failures, last_failure_at, next_start_at)
    SELECT deployment, slot, failures, last_failure_at, next_start_at FROM slot_backoff;
DROP TABLE slot_backoff;

ALTER TABLE containers
    ADD COLUMN incarnation integer,
    ADD COLUMN role text NOT NULL DEFAULT 'active'
        CHECK (role IN ('active', 'warm', 'kept', 'stale'));

-- observed state is keyed by (node, docker id): each engine names its own containers
ALTER TABLE containers DROP CONSTRAINT containers_docker_id_key;
CREATE UNIQUE INDEX containers_node_docker_id ON containers (node, docker_id);

-- The newest snapshot of each container since a moment, and of one container (an index
-- probe, for LATERAL joins over a list of names): one definition for every reader.
CREATE FUNCTION latest_snapshots(newer_than timestamptz)
RETURNS SETOF health_snapshots AS $$
    SELECT DISTINCT ON (container) * FROM health_snapshots
     WHERE at > newer_than ORDER BY container, at DESC
$$ LANGUAGE sql STABLE;

CREATE FUNCTION latest_snapshot(of_container text, newer_than timestamptz)
RETURNS SETOF health_snapshots AS $$
    SELECT * FROM health_snapshots WHERE container = of_container AND at > newer_than
     ORDER BY at DESC LIMIT 1
$$ LANGUAGE sql STABLE;
