-- Autoscaling: one policy per deployment, custom metrics reported by load balancers, and
-- every decision with its reason (including those that kept the count).
CREATE TABLE scaling_policies (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment           text NOT NULL UNIQUE,
    metrics              jsonb NOT NULL DEFAULT '[]'::jsonb,
    rules                jsonb,
    scale_up_cooldown    double precision NOT NULL DEFAULT 300,
    scale_down_cooldown  double precision NOT NULL DEFAULT 600,
    stabilization_window double precision NOT NULL DEFAULT 300,
    enabled              boolean NOT NULL DEFAULT true,
    last_scale_up_at     timestamptz,
    last_scale_down_at   timestamptz,
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE custom_metrics (
    deployment text NOT NULL,
    name       text NOT NULL,
    value      double precision NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    who        text,
    PRIMARY KEY (deployment, name)
);

CREATE TABLE scaling_decisions (
    id             bigserial PRIMARY KEY,
    deployment     text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    current        integer NOT NULL,
    desired        integer NOT NULL,
    recommendation integer NOT NULL,
    applied        boolean NOT NULL,
    reason         text NOT NULL,
    inputs         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX scaling_decisions_deployment_at ON scaling_decisions (deployment, at);
