//! The `prism` binary: parses the command line and hands over to [`prism_cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    prism_cli::main()
}
