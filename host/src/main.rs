//! The `muster` binary: a thin shell over [`muster::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    muster::cli::main()
}
