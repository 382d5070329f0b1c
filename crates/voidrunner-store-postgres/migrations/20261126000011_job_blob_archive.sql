-- Job blobs move to object storage once their job is finished for good (see
-- `voidrunner_store::JobBlobArchiveStore`). An archived row keeps its name, size, SHA-256 and
-- object key; its `data` becomes empty (zero bytes, as on SQLite). Rows written before this
-- migration have NULL size and hash (the size is `octet_length(data)` until archived).
ALTER TABLE job_blobs
    ADD COLUMN object_key  text,
    ADD COLUMN size_bytes  bigint,
    ADD COLUMN sha256      text,
    ADD COLUMN archived_at timestamptz;

-- The archiver's work list: unarchived rows, oldest first.
CREATE INDEX job_blobs_unarchived ON job_blobs (created_at) WHERE object_key IS NULL;

-- Objects of archived rows that were deleted (retention, or anything else): the archiver
-- deletes the objects, then these rows. Filled by the trigger in the deleting transaction, so
-- no object outlives its row unnoticed.
CREATE TABLE job_blob_deleted_objects (
    object_key text        NOT NULL PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION job_blobs_archived_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_blob_deleted_objects (object_key) VALUES (OLD.object_key)
    ON CONFLICT (object_key) DO NOTHING;
    RETURN OLD;
END
$$;

CREATE TRIGGER job_blobs_archived_deleted AFTER DELETE ON job_blobs
FOR EACH ROW WHEN (OLD.object_key IS NOT NULL)
EXECUTE FUNCTION job_blobs_archived_deleted();
