-- Service registry: services (with a change index per service) and their endpoints, from
-- deployments, from registrations (external) and from the seed's /registry routes.
CREATE TABLE services (
    name       text PRIMARY KEY,
    idx        bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE endpoints (
    id             text PRIMARY KEY,
    service        text NOT NULL,
    version        text NOT NULL DEFAULT '1.0.0',
    address        text NOT NULL,
    port           integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    internal       text,
    status         text NOT NULL DEFAULT 'UP' CHECK (status IN ('UP', 'DOWN')),
    health         text NOT NULL DEFAULT 'passing'
                   CHECK (health IN ('passing', 'warning', 'critical', 'unknown')),
    instance       text,
    deployment     text,
    source         text NOT NULL CHECK (source IN ('deployment', 'external', 'legacy')),
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    depends_on     text[] NOT NULL DEFAULT '{}',
    check_spec     jsonb,
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    down_since     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_service ON endpoints (service);

-- Every change of a service's endpoint set bumps its index and wakes blocking queries.
CREATE FUNCTION endpoints_changed() RETURNS trigger AS $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY (CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[NEW.service]
            WHEN 'DELETE' THEN ARRAY[OLD.service]
            ELSE ARRAY[OLD.service, NEW.service] END) LOOP
        INSERT INTO services (name) VALUES (svc)
            ON CONFLICT (name) DO UPDATE SET idx = services.idx + 1, updated_at = now();
        PERFORM pg_notify('service_changed', svc);
    END LOOP;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER endpoints_insert_delete AFTER INSERT OR DELETE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION endpoints_changed();
CREATE TRIGGER endpoints_update AFTER UPDATE ON endpoints
    FOR EACH ROW WHEN ((OLD.service, OLD.version, OLD.address, OLD.port, OLD.status, OLD.health,
                        OLD.metadata) IS DISTINCT FROM
                       (NEW.service, NEW.version, NEW.address, NEW.port, NEW.status, NEW.health,
                        NEW.metadata))
    EXECUTE FUNCTION endpoints_changed();
