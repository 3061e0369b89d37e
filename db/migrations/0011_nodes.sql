-- Many Docker hosts. A node is one engine with its own worker and agent: what its agent
-- reports (capacity, version, address, labels), what an operator sets (availability,
-- label and capacity overrides) and its epoch, raised each time it is declared down, so
-- work planned before is dropped by its executor (fencing).
ALTER TABLE nodes
    ADD COLUMN address         text NOT NULL DEFAULT '127.0.0.1',
    ADD COLUMN labels          jsonb NOT NULL DEFAULT '{}'::jsonb,   -- reported by its agent
    ADD COLUMN label_overrides jsonb NOT NULL DEFAULT '{}'::jsonb,   -- set through the API
    ADD COLUMN cpus_override   double precision,
    ADD COLUMN memory_override bigint,
    ADD COLUMN availability    text NOT NULL DEFAULT 'active'
        CHECK (availability IN ('active', 'pause', 'drain')),
    ADD COLUMN status          text NOT NULL DEFAULT 'ready'
        CHECK (status IN ('ready', 'down', 'returning')),
    ADD COLUMN epoch           bigint NOT NULL DEFAULT 1,
    ADD COLUMN down_since      timestamptz,
    ADD COLUMN docker_down_since timestamptz,
    ADD COLUMN joined_at       timestamptz NOT NULL DEFAULT now();

-- A slot's node (placement persisted), and why it is placed there or nowhere.
ALTER TABLE slots
    ADD COLUMN node          text,
    ADD COLUMN placed_reason text,
    ADD COLUMN pending_reason text;

-- Placement settings of a deployment (a change is a new generation: they live in the
-- template) and its mode.
ALTER TABLE containers DROP CONSTRAINT containers_state_check;
ALTER TABLE containers ADD CONSTRAINT containers_state_check
    CHECK (state IN ('creating', 'created', 'starting', 'running', 'paused', 'stopping',
                     'stopped', 'removing', 'removed', 'error', 'unknown'));

-- External registrations name the node whose agent probes them (NULL: the leader's).
ALTER TABLE endpoints ADD COLUMN probe_node text;
ALTER TABLE installation ADD COLUMN leader_node text;

-- A deployment is no longer on a node: its slots are (slots.node).
ALTER TABLE deployments DROP COLUMN node;
