-- The limits a container runs with, as Docker reports them (HostConfig), for every container
-- (a deployment's instances had none recorded, so nothing counted them as reserved).
ALTER TABLE containers ADD COLUMN resources jsonb NOT NULL DEFAULT '{}'::jsonb;
UPDATE containers SET resources = COALESCE(spec->'resources', '{}'::jsonb);
