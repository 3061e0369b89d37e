-- Images (issue 15). What this installation pulled, per node: image GC decides from these
-- rows, so its decisions survive restarts, and it never removes an image it did not pull.
CREATE TABLE node_images (
    node          text NOT NULL,
    reference     text NOT NULL,          -- as pulled: 127.0.0.1:5000/team/web:v2
    image_id      text,                   -- the engine's id (sha256:...)
    digest        text,                   -- the repository digest (name@sha256:...), if any
    size_bytes    bigint,
    pulled_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),  -- a container of it created or running
    PRIMARY KEY (node, reference)
);

-- A pull that failed, per node and reference, with its backoff: a crash-looping slot does
-- not pull in a tight loop.
CREATE TABLE pull_failures (
    node         text NOT NULL,
    reference    text NOT NULL,
    failures     integer NOT NULL,
    reason       text NOT NULL,
    retry_after  timestamptz NOT NULL,
    PRIMARY KEY (node, reference)
);

-- Registry credentials, stored apart like secret env: never returned, logged or sent in a
-- message; the executor that pulls or pushes reads them.
CREATE TABLE registry_credentials (
    registry    text PRIMARY KEY,             -- host[:port], as in an image reference
    username    text NOT NULL,
    password    text NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A rollout resolves its tag to a digest before any old instance stops: every instance of
-- that generation is created from it.
ALTER TABLE deployment_revisions ADD COLUMN image_digest text;

-- The pulled-image cache limit per node set at runtime (PUT /api/images/settings); NULL:
-- HARBORMASTER_IMAGE_CACHE_SIZE applies.
ALTER TABLE installation ADD COLUMN image_cache_size bigint;

-- What each node's engine holds, as its agent (each full sync) and executor (after each image
-- job) last listed it: web answers GET /api/images from here, never from Docker.
CREATE TABLE engine_images (
    node        text NOT NULL,
    image_id    text NOT NULL,
    tags        text[] NOT NULL DEFAULT '{}',
    digests     text[] NOT NULL DEFAULT '{}',
    size_bytes  bigint,
    created_at  timestamptz,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    listed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, image_id)
);

-- The image a container was created from, by id (a tag moves; the id says what runs).
ALTER TABLE containers ADD COLUMN image_id text;
