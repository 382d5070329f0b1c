//! Stand-alone sandbox helper used by this crate's tests and benchmarks (the `voidrunner`
//! binary ships the same entry point as its hidden `__sandbox-helper` subcommand).

fn main() {
    std::process::exit(voidrunner_sandbox::helper_main());
}
