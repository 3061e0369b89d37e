-- Deployments: desired state of a workload, its revisions, and per-slot restart backoff.
CREATE TABLE deployments (
    name              text PRIMARY KEY,
    node              text NOT NULL DEFAULT 'local',
    generation        integer NOT NULL DEFAULT 1,
    stable_generation integer,
    template          jsonb NOT NULL,
    resources         jsonb NOT NULL DEFAULT '{}'::jsonb,
    replicas          integer NOT NULL CHECK (replicas >= 0),
    min_replicas      integer NOT NULL DEFAULT 0,
    max_replicas      integer NOT NULL,
    desired_version   bigint NOT NULL DEFAULT 1,
    retired_slots     integer[] NOT NULL DEFAULT '{}',
    restart           jsonb NOT NULL DEFAULT '{}'::jsonb,
    update_strategy   jsonb NOT NULL DEFAULT '{}'::jsonb,
    paused            boolean NOT NULL DEFAULT false,
    rolling_back      boolean NOT NULL DEFAULT false,
    rollout_started_at timestamptz,
    state             text NOT NULL DEFAULT 'progressing',
    state_reason      text,
    counts            jsonb NOT NULL DEFAULT '{}'::jsonb,
    dirty             boolean NOT NULL DEFAULT false,
    deleting          boolean NOT NULL DEFAULT false,
    created_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (min_replicas <= max_replicas)
);

CREATE TABLE deployment_revisions (
    deployment  text NOT NULL,
    generation  integer NOT NULL,
    template    jsonb NOT NULL,
    cause       text NOT NULL,
    who         text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment, generation)
);

CREATE TABLE slot_backoff (
    deployment      text NOT NULL,
    slot            integer NOT NULL,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    next_start_at   timestamptz,
    PRIMARY KEY (deployment, slot)
);

ALTER TABLE containers ADD COLUMN draining boolean NOT NULL DEFAULT false;
