//! Executors of VoidRunner: the [`Executor`] trait the worker pool drives, the TOML
//! [`LanguageRegistry`] that says how each language compiles and runs, and the native executor
//! over `voidrunner-sandbox`.

pub mod docker;
pub mod env;
mod executor;
pub mod native;
pub mod registry;
mod types;

pub use docker::{DockerConfig, DockerExecutor, DockerReport, RoutingExecutor, doctor_report};
pub use executor::Executor;
pub use native::{NativeConfig, NativeExecutor};
pub use registry::{
    Availability, CompileLimits, CompileStep, ExecutorKind, Language, LanguageInfo,
    LanguageRegistry, RegistryError,
};
pub use types::{
    ExecOutcome, ExecRequest, OutputEvent, OutputStream, Phase, PhaseReport, StdinStream,
};
