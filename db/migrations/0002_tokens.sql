-- Bearer tokens: only a hash of each secret is stored.
CREATE TABLE tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    secret_hash  text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    rate_limit   text,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX events_who ON events (who, at);
CREATE INDEX jobs_requested_by ON jobs (requested_by, created_at);
