//! The `aupd` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = aupd::cli::Cli::parse();
    let code = match aupd::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            2
        }
    };
    std::process::exit(code);
}
