-- Idempotency keys belong to a request, not to a job: scoped to the caller's token and
-- fingerprinted by method, path and body, with the first answer kept for replays.
CREATE TABLE idempotency_keys (
    who         text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,          -- sha256 of method, path, query (less wait) and body
    request     text NOT NULL,          -- "PATCH /api/deployments/web", for the error message
    status      integer,                -- NULL while the first request is being answered
    body        jsonb,
    location    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (who, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- jobs no longer carry the key (one request may make several jobs)
DROP INDEX jobs_idempotency;
