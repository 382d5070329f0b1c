-- Retention (voidrunner_store::RetentionStore, docs/OPERATIONS.md): the cleaner takes the
-- oldest finished standalone jobs, finished workflows and old hook deliveries in batches.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE workflow_id IS NULL;
CREATE INDEX workflows_finished ON workflows (finished_at) WHERE status <> 'running';
CREATE INDEX hook_deliveries_received ON hook_deliveries (received_at);
