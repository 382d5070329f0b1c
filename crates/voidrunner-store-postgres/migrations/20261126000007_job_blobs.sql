-- Bytes that belong to a job and must be reachable from every node: the source tarball
-- uploaded with it (`source.tar`) and the collected artifacts (`artifacts/<path>`). Capped by
-- the API and the runner; deleted with the job.
CREATE TABLE job_blobs (
    job_id     uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, name)
);
