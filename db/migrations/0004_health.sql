-- Resource snapshots, alert hysteresis state, probe results, host figures per node.
CREATE TABLE health_snapshots (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    container    text NOT NULL,
    deployment   text,
    node         text NOT NULL,
    running      boolean NOT NULL,
    cpu_ns       bigint,            -- cumulative CPU time
    memory_bytes bigint,
    memory_limit bigint,            -- the container's limit, or host memory without one
    cpu_limit    double precision,  -- cores: the container's limit, or host cores
    net_rx       bigint,            -- cumulative
    net_tx       bigint,
    blk_read     bigint,            -- cumulative
    blk_write    bigint,
    pids         integer,
    cpu_percent  double precision,  -- derived from the previous snapshot
    memory_percent double precision,
    status       text NOT NULL,     -- healthy, warning, critical, stopped
    source       text NOT NULL      -- cgroup or engine
);
CREATE INDEX health_snapshots_container_at ON health_snapshots (container, at DESC);
CREATE INDEX health_snapshots_at ON health_snapshots (at);

CREATE TABLE alert_state (
    container  text NOT NULL,
    kind       text NOT NULL,
    firing     boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (container, kind)
);

ALTER TABLE containers ADD COLUMN disk_bytes bigint;
ALTER TABLE containers ADD COLUMN health_detail jsonb;

ALTER TABLE nodes ADD COLUMN host_cpu_percent double precision;
ALTER TABLE nodes ADD COLUMN host_memory_bytes bigint;
ALTER TABLE nodes ADD COLUMN host_memory_used bigint;
ALTER TABLE nodes ADD COLUMN host_disk_bytes bigint;
ALTER TABLE nodes ADD COLUMN host_disk_used bigint;
ALTER TABLE nodes ADD COLUMN sampled_at timestamptz;
