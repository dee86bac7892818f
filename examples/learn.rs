//! Runs the learned-detector commands until `aupd policy train|eval` wires
//! them: `cargo run --release --example learn -- train --data ... --out ...`.
use aupd::policy::train::{run_eval_model, run_train, EvalArgs, TrainArgs};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a detector and write model + sidecar.
    Train(TrainArgs),
    /// Measure a saved detector.
    Eval(EvalArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => run_train(&a),
        Command::Eval(a) => run_eval_model(&a),
    }
}
