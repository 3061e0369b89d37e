-- Replica bounds are optional: NULL means unset (0 .. the server's cap,
-- HARBORMASTER_MAX_REPLICAS). Bounds a user or a policy set stay.
ALTER TABLE deployments ALTER COLUMN min_replicas DROP NOT NULL,
                        ALTER COLUMN min_replicas DROP DEFAULT,
                        ALTER COLUMN max_replicas DROP NOT NULL;

-- Until now a deployment created without bounds was given min = min(1, replicas) and
-- max = max(10, replicas), and the seed's start route widened them; those values cannot be
-- told apart from ones a user typed. Deployments with a scaling policy keep their bounds
-- (the policy set them); elsewhere a max of exactly 10 and a min of 0 or 1 are taken as the
-- old defaults and unset, and so are both bounds of the seed's deployments.
UPDATE deployments d SET min_replicas = NULL, max_replicas = NULL
 WHERE d.name LIKE 'legacy-%'
   AND NOT EXISTS (SELECT 1 FROM scaling_policies p WHERE p.deployment = d.name);
UPDATE deployments d SET max_replicas = NULL
 WHERE d.max_replicas = 10
   AND NOT EXISTS (SELECT 1 FROM scaling_policies p WHERE p.deployment = d.name);
UPDATE deployments d SET min_replicas = NULL
 WHERE d.min_replicas <= 1
   AND NOT EXISTS (SELECT 1 FROM scaling_policies p WHERE p.deployment = d.name);
