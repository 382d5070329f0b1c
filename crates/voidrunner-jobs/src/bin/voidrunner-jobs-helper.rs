//! The sandbox helper as a stand-alone binary, so this crate's tests can run jobs in the real
//! sandbox without the `voidrunner` binary (which ships it as a hidden subcommand).

fn main() {
    std::process::exit(voidrunner_sandbox::helper_main());
}
