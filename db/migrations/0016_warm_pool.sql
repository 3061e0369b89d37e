-- The warm pool (issue 18): a deployment keeps warm_pool instances of its current generation
-- created, started, ready once and paused (role 'warm', already allowed by 0010) beside its
-- replicas. A setting, not a template field: changing it never rolls out. Replica bounds
-- apply to replicas only, so it is checked against the server's cap by the API.
ALTER TABLE deployments ADD COLUMN warm_pool integer NOT NULL DEFAULT 0
    CHECK (warm_pool >= 0);
