//! The command line: `aupd serve`, `aupd policy …`, `aupd score`, `aupd bench …`.

pub mod bench;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::policy::{self, cases};

/// aupd: acceptable-use policy enforcement for a cloud provider's tenants.
#[derive(Debug, Parser)]
#[command(name = "aupd", version, about)]
pub struct Cli {
    /// Settings file (TOML); `AUPD__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "AUPD_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve,
    /// Work with the policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Score texts from the arguments or standard input; prints JSON verdicts.
    Score(ScoreArgs),
    /// Print throughput figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Create, list and revoke API tokens (opens the store: stop the service first).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the audit log (opens the store: stop the service first).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Reports for regulators (opens the store: stop the service first,
    /// or use `GET /v1/reports/transparency`).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Reviewers' labels (opens the store: stop the service first).
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Check the settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Bring the PostgreSQL store's schema up to date (`serve` does this
    /// too at start) and print the migrations applied.
    Migrate,
}

/// `aupd config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings (defaults, `--config FILE`, `AUPD__…`) and print
    /// the effective settings as TOML, secrets masked; exits 1 naming the
    /// bad key, file and line.
    Check {
        /// Print the built-in defaults instead (no file, no environment).
        #[arg(long)]
        defaults: bool,
    },
}

/// `aupd policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy directory; exits non-zero with every error found.
    Check {
        /// Policy directory (default: the configured one, `policies`).
        dir: Option<PathBuf>,
    },
    /// Run the policy's test cases (`DIR/tests/*.toml`).
    Test {
        /// Policy directory (default: the configured one, `policies`).
        dir: Option<PathBuf>,
    },
    /// Train a learned detector on the training parts (80%) of labelled files.
    Train(policy::train::TrainArgs),
    /// Per-category precision, recall, F1, PR-AUC and confusion matrix of the
    /// whole policy on a labelled file (held-out 20% or cross-validated).
    Eval(policy::eval::PolicyEvalArgs),
    /// Figures of one saved model alone on labelled files.
    EvalModel(policy::train::EvalArgs),
    /// The whole policy on every shared source's held-out part, each model
    /// retrained without that source (or as shipped, with `--shipped`).
    CrossSource(policy::crosssource::CrossSourceArgs),
    /// Turn a published word-vector set into the file `train --embeddings`
    /// reads (folded words, most frequent first).
    Embeddings(policy::embeddings::EmbeddingsArgs),
}

/// `aupd token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; its secret is printed once and only its hash is kept.
    Create {
        /// admin, operator, approver, reporter, service or tenant:<id>.
        #[arg(long)]
        role: String,
        /// Who holds it (a person's name or a system's); separation of
        /// duties compares these names.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id.
    Revoke {
        /// The token id (`tok_…`).
        id: String,
    },
}

/// `aupd audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exits non-zero at the first changed or missing
    /// record. Prints the head as `<hash>@<seq>`: keep it outside the store
    /// (a ticket, a log) to check against later.
    Verify {
        /// A head exported earlier (`<hash>@<seq>`): record `seq` must still
        /// have this hash, which catches a log changed and re-hashed since.
        #[arg(long, value_name = "HASH@SEQ")]
        expect_head: Option<crate::store::audit::ChainHead>,
    },
}

/// `aupd report …`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Transparency counts (DSA Art. 15 and 24) over `[from, to)`: notices,
    /// actions by type and ground, automation, median time from notice to
    /// action, appeals, reinstatements.
    Transparency {
        /// First instant counted: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
        #[arg(long)]
        from: String,
        /// First instant no longer counted.
        #[arg(long)]
        to: String,
        /// `json` or `csv`.
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
    },
}

/// `aupd review …`
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Print a tenant's labels as CSV for `aupd policy train --labels`.
    Export {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

/// `aupd score`
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Policy directory (default: the configured one).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Read JSON lines (`{"text": "..."}` or a JSON string) instead of plain lines.
    #[arg(long)]
    pub jsonl: bool,
    /// Texts to score; without any, lines are read from standard input.
    pub texts: Vec<String>,
}

/// `aupd bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Single-thread scoring throughput of the full policy over a CSV column,
    /// next to a bare Aho-Corasick scan of the same phrase lists.
    Score {
        /// CSV file (e.g. ../shared/data/davidson2017/labeled_data.csv).
        #[arg(long)]
        data: PathBuf,
        /// Column holding the text.
        #[arg(long)]
        text: String,
        /// Passes over the data.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Policy directory (default: the configured one).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Deadline ticker with many open cases: restart-to-first-fire, fire lag, memory.
    Deadlines {
        /// Open cases with a running deadline.
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        /// How many of them come due during the window.
        #[arg(long, default_value_t = 5_000)]
        due: usize,
        /// Seconds over which those come due.
        #[arg(long, default_value_t = 20)]
        window: u64,
        /// Longest pause of the ticker between looks, in ms (as `enforcement.tick_ms`).
        #[arg(long, default_value_t = 1000)]
        tick_ms: u64,
        /// Backends and replicas.
        #[command(flatten)]
        backend: crate::cli::bench::cluster::BackendArgs,
    },
    /// Case actions through the HTTP API on loopback.
    Actions {
        /// Cases to act on.
        #[arg(long, default_value_t = 200)]
        cases: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Backends and replicas.
        #[command(flatten)]
        backend: crate::cli::bench::cluster::BackendArgs,
    },
    /// Sampler throughput from loopback JSON feeds (fetch, extract, score, store).
    Sampler {
        /// Feeds sampled at once (each fetched every second).
        #[arg(long, default_value_t = 16)]
        sources: usize,
        /// Fresh posts per fetch of each feed.
        #[arg(long, default_value_t = 1000)]
        items: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 20)]
        secs: u64,
    },
    /// Push-intake throughput and latency over loopback.
    Intake {
        /// Items per request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Tenants the load is spread over.
        #[arg(long, default_value_t = 1)]
        tenants: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 15)]
        secs: u64,
        /// Backends and replicas.
        #[command(flatten)]
        backend: crate::cli::bench::cluster::BackendArgs,
    },
    /// Webhook deliveries per second to a loopback receiver, with the outbox
    /// on disk, and commit-to-delivery latency.
    Delivery {
        /// Messages to deliver.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Messages committed (and flushed) per outbox transaction.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Requests in flight to the one endpoint, shared by every replica that
        /// sends (the shipped default is 8).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Messages queued per second (0: all at once, a backlog).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Backends and replicas.
        #[command(flatten)]
        backend: crate::cli::bench::cluster::BackendArgs,
    },
    /// Resident memory of `aupd serve` under a steady mixed load over
    /// loopback, printed every few seconds with the store's size on disk.
    Memory {
        /// Seconds of load.
        #[arg(long, default_value_t = 600)]
        secs: u64,
        /// Requests started per second.
        #[arg(long, default_value_t = 50)]
        rate: u64,
        /// Seconds between lines.
        #[arg(long, default_value_t = 30)]
        every: u64,
        /// Tenants the load is spread over.
        #[arg(long, default_value_t = 4)]
        tenants: usize,
        /// `store.cache_mb` for the server (default: the configured default).
        #[arg(long)]
        cache_mb: Option<u64>,
    },
    /// Prevalence from reviewers' labels on OLID as a stand-in tenant:
    /// coverage and error of the label estimate and the corrected count
    /// over repeated review draws, beside the model's own count.
    ReviewPrevalence {
        /// The shared data folder (with `olid2019/`).
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// Items reviewed per draw.
        #[arg(long, default_value_t = 300)]
        reviewed: u64,
        /// Draws.
        #[arg(long, default_value_t = 200)]
        repetitions: u64,
        /// Policy directory (default: the configured one).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// F1 on OLID's official test set of the policy trained without OLID,
    /// then with 100, 300 and 1,000 reviewed OLID training tweets added.
    ReviewLearning {
        /// The shared data folder (with `olid2019/`).
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// How many reviewed tweets to add, one run each.
        #[arg(long, value_delimiter = ',', default_value = "100,300,1000")]
        reviewed: Vec<u64>,
        /// Training weights of a reviewed label to try, one run each.
        #[arg(long, value_delimiter = ',', default_values_t = [policy::train::DEFAULT_LABEL_WEIGHT])]
        label_weight: Vec<f32>,
        /// Seed of the first review draw.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Review draws per size (seeds `seed`, `seed + 1`, …); the figures
        /// are their means.
        #[arg(long, default_value_t = 5)]
        draws: u64,
        /// Policy directory (default: the configured one).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Kill `aupd serve` with SIGKILL under load, restart it, repeat; print
    /// lost and duplicated messages.
    SoakKill {
        /// Kill/restart cycles.
        #[arg(long, default_value_t = 20)]
        cycles: usize,
        /// Concurrent clients queueing test messages.
        #[arg(long, default_value_t = 4)]
        loaders: usize,
    },
}

/// Runs a parsed command line; the returned code is the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Config(ConfigCommand::Check { defaults }) = cli.command {
        return config_check(cli.config.as_deref(), defaults);
    }
    let settings = Settings::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Serve => {
            crate::telemetry::init(&settings.log);
            serve(settings)?;
            Ok(0)
        }
        Command::Policy(PolicyCommand::Check { dir }) => {
            Ok(policy_check(dir.as_deref().unwrap_or(&settings.policy.dir)))
        }
        Command::Policy(PolicyCommand::Test { dir }) => {
            Ok(policy_test(dir.as_deref().unwrap_or(&settings.policy.dir)))
        }
        Command::Policy(PolicyCommand::Train(args)) => {
            policy::train::run_train(&args)?;
            Ok(0)
        }
        Command::Policy(PolicyCommand::Embeddings(args)) => {
            policy::embeddings::run_embeddings(&args)?;
            Ok(0)
        }
        Command::Policy(PolicyCommand::Eval(args)) => {
            policy::eval::run_policy_eval(&args, &settings.policy.dir)?;
            Ok(0)
        }
        Command::Policy(PolicyCommand::CrossSource(args)) => {
            policy::crosssource::run_cross_source(&args, &settings.policy.dir)?;
            Ok(0)
        }
        Command::Policy(PolicyCommand::EvalModel(args)) => {
            policy::train::run_eval_model(&args)?;
            Ok(0)
        }
        Command::Token(cmd) => token(cmd, &settings),
        Command::Config(_) => Ok(0),
        Command::Migrate => migrate(&settings),
        Command::Review(ReviewCommand::Export { tenant }) => review_export(&settings, &tenant),
        Command::Audit(AuditCommand::Verify { expect_head }) => {
            audit_verify(&settings, expect_head.as_ref())
        }
        Command::Report(ReportCommand::Transparency { from, to, format }) => {
            report_transparency(&settings, &from, &to, &format)
        }
        Command::Score(args) => score(&args, &settings.policy.dir),
        Command::Bench(BenchCommand::Deadlines {
            cases,
            due,
            window,
            tick_ms,
            backend,
        }) => crate::cli::bench::enforcement::deadlines(&backend, cases, due, window, tick_ms),
        Command::Bench(BenchCommand::Actions {
            cases,
            connections,
            secs,
            backend,
        }) => {
            crate::cli::bench::enforcement::actions(&settings, &backend, cases, connections, secs)
        }
        Command::Bench(BenchCommand::Sampler {
            sources,
            items,
            secs,
        }) => crate::cli::bench::sampling::sampler(&settings, sources, items, secs),
        Command::Bench(BenchCommand::Intake {
            batch,
            connections,
            tenants,
            secs,
            backend,
        }) => crate::cli::bench::sampling::intake(
            &settings,
            &backend,
            batch,
            connections,
            tenants,
            secs,
        ),
        Command::Bench(BenchCommand::Delivery {
            messages,
            batch,
            concurrency,
            rate,
            backend,
        }) => {
            let mut delivery = settings.delivery.clone();
            delivery.per_endpoint_concurrency = concurrency.max(1);
            delivery.max_in_flight = delivery.max_in_flight.max(concurrency);
            crate::cli::bench::soak::bench_delivery(
                &backend,
                messages,
                batch.max(1),
                rate,
                delivery,
            )
        }
        Command::Bench(BenchCommand::Memory {
            secs,
            rate,
            every,
            tenants,
            cache_mb,
        }) => {
            let exe = std::env::current_exe().context("finding the aupd binary")?;
            let policy = std::fs::canonicalize(&settings.policy.dir)
                .with_context(|| format!("finding {}", settings.policy.dir.display()))?;
            let run = crate::cli::bench::memory::MemoryRun {
                secs,
                rate,
                every,
                tenants,
                cache_mb,
            };
            crate::cli::bench::memory::memory(&exe, &policy, run)
        }
        Command::Bench(BenchCommand::SoakKill { cycles, loaders }) => {
            let exe = std::env::current_exe().context("finding the aupd binary")?;
            let policy = std::fs::canonicalize(&settings.policy.dir)
                .with_context(|| format!("finding {}", settings.policy.dir.display()))?;
            crate::cli::bench::soak::soak_kill(&exe, &policy, cycles, loaders.max(1))
        }
        Command::Bench(BenchCommand::ReviewPrevalence {
            data,
            reviewed,
            repetitions,
            policy,
        }) => crate::cli::bench::review::review_prevalence(
            &data,
            policy.as_deref().unwrap_or(&settings.policy.dir),
            reviewed,
            repetitions,
        ),
        Command::Bench(BenchCommand::ReviewLearning {
            data,
            reviewed,
            label_weight,
            seed,
            draws,
            policy,
        }) => crate::cli::bench::review::review_learning(
            &data,
            policy.as_deref().unwrap_or(&settings.policy.dir),
            &reviewed,
            &label_weight,
            seed,
            draws,
        ),
        Command::Bench(BenchCommand::Score {
            data,
            text,
            rounds,
            policy,
        }) => bench_score(
            &data,
            &text,
            rounds,
            policy.as_deref().unwrap_or(&settings.policy.dir),
        ),
    }
}

fn config_check(file: Option<&Path>, defaults: bool) -> anyhow::Result<i32> {
    let settings = if defaults {
        Settings::default()
    } else {
        match Settings::load(file, std::env::vars()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("config check failed: {e}");
                return Ok(1);
            }
        }
    };
    print!("{}", settings.to_toml()?);
    if !defaults {
        eprintln!(
            "config ok ({})",
            file.map_or("defaults and environment".to_string(), |f| f
                .display()
                .to_string())
        );
    }
    Ok(0)
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = crate::app::Application::build(&settings)?;
        app.run_until_stopped().await
    })
}

fn open_store(settings: &Settings) -> anyhow::Result<crate::store::SharedStore> {
    let store = crate::store::open(&settings.store);
    if settings.store.backend == crate::config::StoreBackend::Sled {
        return store.context(
            "if aupd is running, stop it first or use the /v1/tokens API (sled allows one process)",
        );
    }
    store
}

fn migrate(settings: &Settings) -> anyhow::Result<i32> {
    use crate::config::StoreBackend;
    let url = match (settings.store.backend, &settings.store.database_url) {
        (StoreBackend::Postgres, Some(url)) => url,
        _ => {
            println!("the sled store needs no migrations (store.backend = \"sled\")");
            return Ok(0);
        }
    };
    let store = crate::store::PgStore::connect(url.expose(), 1)
        .and_then(|s| s.migrate().map(|applied| (s, applied)))
        .with_context(|| format!("migrating the PostgreSQL store at {}", url.redacted()));
    let (_store, applied) = store?;
    let latest = crate::store::MIGRATIONS.last().map_or(0, |m| m.version);
    if applied.is_empty() {
        println!("{} is up to date (migration {latest})", url.redacted());
    }
    for (version, name) in &applied {
        println!("applied migration {version:04} {name}");
    }
    if !applied.is_empty() {
        println!("{} is at migration {latest}", url.redacted());
    }
    Ok(0)
}

fn token(cmd: TokenCommand, settings: &Settings) -> anyhow::Result<i32> {
    let store = open_store(settings)?;
    match cmd {
        TokenCommand::Create { role, name } => {
            let role: crate::domain::Role = role.parse()?;
            let made = crate::service::tokens::create(&store, role, &name, "command line")?;
            println!("{}", made.token);
            eprintln!(
                "token {} for {} ({}) created; the secret above is shown only now",
                made.id, made.name, made.role
            );
        }
        TokenCommand::List => {
            for t in crate::service::tokens::list(&store)? {
                let status = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".into(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id, t.role, t.name, t.created_at, status
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let t = crate::service::tokens::revoke(&store, &id, "command line")?;
            println!("revoked {} ({})", t.id, t.name);
        }
    }
    Ok(0)
}

fn audit_verify(
    settings: &Settings,
    expect: Option<&crate::store::audit::ChainHead>,
) -> anyhow::Result<i32> {
    use crate::store::audit::{verify, AuditVerdict};
    let store = open_store(settings)?;
    match verify(&store, expect)? {
        AuditVerdict::Intact { records, head } => {
            let matched = expect
                .map(|x| format!("; matches the expected head at record {}", x.seq))
                .unwrap_or_default();
            println!("audit log intact: {records} records, head {head}@{records}{matched}");
            Ok(0)
        }
        AuditVerdict::Broken { seq, problem } => {
            println!("audit log broken at record {seq}: {problem}");
            Ok(1)
        }
    }
}

fn report_transparency(
    settings: &Settings,
    from: &str,
    to: &str,
    format: &str,
) -> anyhow::Result<i32> {
    use crate::domain::transparency::{count, to_csv, Window};
    let window = match Window::parse(from, to) {
        Ok(w) => w,
        Err(message) => {
            eprintln!("{message}");
            return Ok(2);
        }
    };
    let store = open_store(settings)?;
    let cases = store.all_cases().context("reading cases")?;
    let reports = store.reports().context("reading reports")?;
    let report = count(window, &cases, &reports);
    if format == "csv" {
        print!("{}", to_csv(&report));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(0)
}

fn review_export(settings: &Settings, tenant: &str) -> anyhow::Result<i32> {
    let Ok(tenant) = crate::domain::TenantId::try_from(tenant) else {
        eprintln!("{tenant:?} is not a tenant id");
        return Ok(2);
    };
    let store = open_store(settings)?;
    if store.tenant(&tenant)?.is_none() {
        eprintln!("no tenant {}", tenant.as_str());
        return Ok(1);
    }
    let rows = crate::review::export::export(&store, &tenant, std::io::stdout().lock())?;
    eprintln!("{rows} labelled rows of {}", tenant.as_str());
    Ok(0)
}

fn policy_check(dir: &Path) -> i32 {
    match policy::load_engine(dir) {
        Ok(engine) => {
            let p = engine.policy();
            let detectors: usize = p.categories.iter().map(|c| c.detectors.len()).sum();
            println!(
                "policy ok: {} ({} categories, {} detectors, {} context signals), version {}",
                dir.display(),
                p.categories.len(),
                detectors,
                p.context.signals.len(),
                p.version
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("policy check failed: {}", dir.display());
            1
        }
    }
}

fn policy_test(dir: &Path) -> i32 {
    let engine = match policy::load_engine(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let cases = match cases::load_cases(&dir.join("tests"), &engine) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return 1;
        }
    };
    let failures = cases::run_cases(&engine, &cases);
    for f in &failures {
        println!(
            "FAIL {}:{}: {:?}",
            f.case.file.display(),
            f.case.line,
            f.case.text
        );
        for p in &f.problems {
            println!("     {p}");
        }
    }
    println!(
        "policy tests: {} passed, {} failed (policy {})",
        cases.len() - failures.len(),
        failures.len(),
        &engine.version()[..12]
    );
    i32::from(!failures.is_empty())
}

fn score(args: &ScoreArgs, default_dir: &Path) -> anyhow::Result<i32> {
    let dir = args.policy.as_deref().unwrap_or(default_dir);
    let engine = policy::load_engine(dir)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |text: &str| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, &engine.score(text))?;
        out.write_all(b"\n")?;
        Ok(())
    };
    if !args.texts.is_empty() {
        for t in &args.texts {
            emit(t)?;
        }
        return Ok(0);
    }
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading standard input")?;
        if args.jsonl {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("line {}: not JSON", i + 1))?;
            let text = match &value {
                serde_json::Value::String(s) => s.as_str(),
                serde_json::Value::Object(o) => o
                    .get("text")
                    .and_then(|t| t.as_str())
                    .with_context(|| format!("line {}: object without a string `text`", i + 1))?,
                _ => anyhow::bail!("line {}: expected a string or an object with `text`", i + 1),
            };
            emit(text)?;
        } else {
            emit(&line)?;
        }
    }
    Ok(0)
}

fn bench_score(data: &Path, column: &str, rounds: usize, dir: &Path) -> anyhow::Result<i32> {
    if !data.exists() {
        println!(
            "skipped: {} is not here (the benchmark reads ../shared/data)",
            data.display()
        );
        return Ok(0);
    }
    let engine = policy::load_engine(dir)?;
    let texts = crate::policy::dataset::read_text_column(data, column)?;
    let f = crate::cli::bench::score_throughput(&engine, &texts, rounds)?;
    println!(
        "data: {} texts, {:.2} MB per pass, {} passes, single thread",
        f.texts,
        f.bytes as f64 / 1e6,
        f.rounds
    );
    println!(
        "full policy ({} categories): {:.1} MB/s, {:.0} texts/s, {:.2} µs/text; {} texts flagged per pass",
        engine.policy().categories.len(),
        f.policy_mb_s(),
        f.policy_texts_s(),
        1e6 / f.policy_texts_s(),
        f.flagged
    );
    println!("  of which folding alone: {:.1} MB/s", f.fold_mb_s());
    println!(
        "bare Aho-Corasick DFA ({} phrases, ASCII case-insensitive): {:.1} MB/s, {:.0} texts/s; {} matches per pass",
        f.bare_phrases,
        f.bare_mb_s(),
        f.bare_texts_s(),
        f.bare_matches
    );
    Ok(0)
}
