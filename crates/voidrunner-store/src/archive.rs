//! Log archiving (large logs moved to object storage) and log retention.

/// Which logs to archive or expire, and where archived logs are.
#[async_trait::async_trait]
pub trait LogArchiveStore {}
