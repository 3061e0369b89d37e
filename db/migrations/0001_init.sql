-- Harbormaster schema: installation, nodes, jobs, containers, secrets, events.

CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (cluster_id) VALUES (replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE nodes (
    name            text PRIMARY KEY,
    docker_ok       boolean NOT NULL DEFAULT false,
    docker_latency_ms double precision,
    docker_error    text,
    docker_version  text,
    cpus            integer,
    memory_bytes    bigint,
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    agent_pid       integer
);

CREATE TABLE jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL,
    target          text NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    queue           text NOT NULL DEFAULT 'default',
    actor           text NOT NULL,
    args            jsonb NOT NULL DEFAULT '{}'::jsonb,
    progress        jsonb,
    result          jsonb,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    requested_by    text,
    idempotency_key text,
    sends           integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status_kind ON jobs (status, kind);
CREATE INDEX jobs_created ON jobs (created_at);

-- Wake waiters (GET /api/jobs/<id>?wait=) when a job ends.
CREATE FUNCTION jobs_notify_end() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('succeeded', 'failed', 'cancelled')
       AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM pg_notify('job_ended', NEW.id::text);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER jobs_notify_end AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_notify_end();

-- Observed and requested containers, keyed by their (deterministic) name.
CREATE TABLE containers (
    name        text PRIMARY KEY,
    docker_id   text UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('standalone', 'deployment')),
    deployment  text,
    slot        integer,
    generation  integer,
    node        text NOT NULL,
    image       text NOT NULL,
    state       text NOT NULL DEFAULT 'creating'
                CHECK (state IN ('creating', 'created', 'starting', 'running', 'paused', 'stopping',
                                 'stopped', 'removing', 'removed', 'error')),
    health      text NOT NULL DEFAULT 'none'
                CHECK (health IN ('none', 'starting', 'healthy', 'unhealthy')),
    spec        jsonb NOT NULL DEFAULT '{}'::jsonb,
    ports       jsonb NOT NULL DEFAULT '{}'::jsonb,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    pid         integer,
    restarts    integer NOT NULL DEFAULT 0,
    exit_code   integer,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX containers_deployment ON containers (deployment, slot);
CREATE INDEX containers_state ON containers (state);

-- Secret env entries live apart from every other record and are only read by the
-- worker that creates the container.
CREATE TABLE secrets (
    owner      text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);

CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    deployment text,
    container  text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    who        text
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_container ON events (container, id);
