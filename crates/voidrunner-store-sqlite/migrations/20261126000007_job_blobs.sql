-- Bytes that belong to a job and must be reachable from every node: the source tarball
-- uploaded with it (`source.tar`) and the collected artifacts (`artifacts/<path>`). Capped by
-- the API and the runner; deleted with the job.
CREATE TABLE job_blobs (
    job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
