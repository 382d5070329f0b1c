//! Reading a job blob wherever it is: the database row, or the object the
//! [`JobBlobArchiver`](crate::JobBlobArchiver) moved it to (streamed, never loaded whole).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use voidrunner_domain::JobId;
use voidrunner_store::{JobBlobLocation, Scope, Store, StoreError};

use crate::JobBlobError;

/// A blob's bytes, from wherever they are.
pub enum JobBlobBody {
    /// From the database.
    Bytes(Vec<u8>),
    /// Streamed from object storage.
    Stream {
        /// Total bytes (checked against the object).
        size: u64,
        /// The bytes.
        stream: BoxStream<'static, Result<Bytes, object_store::Error>>,
    },
}

impl std::fmt::Debug for JobBlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobBlobBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            JobBlobBody::Stream { size, .. } => write!(f, "Stream({size} bytes)"),
        }
    }
}

/// Serves job blobs from the database or object storage; cheap to clone.
#[derive(Clone)]
pub struct JobBlobReader {
    store: Arc<dyn Store>,
    objects: Option<Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for JobBlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobBlobReader")
            .field("objects", &self.objects.as_ref().map(|o| o.to_string()))
            .finish_non_exhaustive()
    }
}

impl JobBlobReader {
    /// A reader over `store` and, when configured, `objects`.
    pub fn new(store: Arc<dyn Store>, objects: Option<Arc<dyn ObjectStore>>) -> Self {
        Self { store, objects }
    }

    /// Opens the blob `name` of job `id` within `scope`. `Store(NotFound)` when the job is
    /// out of scope, has no such blob, or its object vanished (the job was just deleted).
    pub async fn open(
        &self,
        scope: Scope,
        id: JobId,
        name: &str,
    ) -> Result<JobBlobBody, JobBlobError> {
        let archived = match self.store.job_blob_location(scope, id, name).await? {
            JobBlobLocation::Stored(b) => return Ok(JobBlobBody::Bytes(b)),
            JobBlobLocation::Archived(a) => a,
        };
        let objects = self
            .objects
            .as_ref()
            .ok_or_else(|| JobBlobError::NotConfigured(archived.object_key.clone()))?;
        let object_err = |source| JobBlobError::Object {
            key: archived.object_key.clone(),
            source,
        };
        let key = ObjectPath::parse(&archived.object_key)
            .map_err(|e| object_err(object_store::Error::from(e)))?;
        let got = match objects.get(&key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(JobBlobError::Store(StoreError::NotFound));
            }
            Err(e) => return Err(object_err(e)),
        };
        if got.meta.size != archived.size {
            return Err(JobBlobError::Size {
                key: archived.object_key,
                expected: archived.size,
                got: got.meta.size,
            });
        }
        Ok(JobBlobBody::Stream {
            size: archived.size,
            stream: got.into_stream().boxed(),
        })
    }
}
