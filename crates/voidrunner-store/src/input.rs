//! Stdin of interactive executions: chunks appended by any API node (WebSocket), read in order
//! by the worker that runs the execution. Owned by the interactive-stdin work (issue 5).

/// Streaming stdin of interactive executions.
#[async_trait::async_trait]
pub trait InputStore {}
