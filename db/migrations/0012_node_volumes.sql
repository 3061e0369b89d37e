-- The named volumes each node's engine holds, as its agent last reported them: a deployment
-- that mounts a named volume is placed where that volume is (volumes are per engine).
ALTER TABLE nodes ADD COLUMN volumes text[] NOT NULL DEFAULT '{}';
