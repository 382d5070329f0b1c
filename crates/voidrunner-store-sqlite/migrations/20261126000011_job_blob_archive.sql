-- Job blobs move to object storage once their job is finished for good (see
-- `voidrunner_store::JobBlobArchiveStore`). An archived row keeps its name, size, SHA-256 and
-- object key; its `data` becomes empty (zero bytes: SQLite cannot drop the NOT NULL of
-- `data` without copying every blob into a new table). Rows written before this migration
-- have NULL size and hash (the size is `length(data)` until archived).
ALTER TABLE job_blobs ADD COLUMN object_key TEXT;
ALTER TABLE job_blobs ADD COLUMN size_bytes INTEGER;
ALTER TABLE job_blobs ADD COLUMN sha256 TEXT;
ALTER TABLE job_blobs ADD COLUMN archived_at INTEGER;

-- The archiver's work list: unarchived rows, oldest first.
CREATE INDEX job_blobs_unarchived ON job_blobs (created_at) WHERE object_key IS NULL;

-- Objects of archived rows that were deleted (retention, or anything else): the archiver
-- deletes the objects, then these rows. Filled by the trigger in the deleting transaction, so
-- no object outlives its row unnoticed.
CREATE TABLE job_blob_deleted_objects (
    object_key TEXT    NOT NULL PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER job_blobs_archived_deleted AFTER DELETE ON job_blobs
WHEN OLD.object_key IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO job_blob_deleted_objects (object_key, deleted_at)
    VALUES (OLD.object_key, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;
