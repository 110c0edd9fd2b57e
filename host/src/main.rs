//! The `sluice` command-line tool; all logic lives in the library.

fn main() -> std::process::ExitCode {
    sluice_host::cli::main()
}
