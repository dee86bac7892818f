//! What the store benchmarks (`aupd bench intake|actions|deadlines|delivery`)
//! share to run on sled and on PostgreSQL: the backend choice on the command
//! line, a scratch database made through an admin URL and dropped at the end,
//! N in-process replicas (`Application`s with distinct `cluster.replica_id`)
//! on that one database, and a closing table with each backend's figures
//! beside their targets. Never pass/fail.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::{Application, BuildOptions};
use crate::config::{DatabaseUrl, Settings, StoreBackend};

/// Which backends a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// sled, one process.
    Sled,
    /// PostgreSQL with `--replicas` replicas on one scratch database.
    Postgres,
    /// sled first, then PostgreSQL.
    Both,
}

/// The backend options of a store benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Admin URL of a PostgreSQL cluster: the bench creates a scratch
    /// database there (`aupd_bench_…`) and drops it at the end.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Backends to measure (default: `sled`, or `both` with `--database-url`).
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// Replicas on the one database (PostgreSQL only).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
}

/// The backend one pass of a benchmark runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// sled in the bench's scratch directory.
    Sled,
    /// A scratch PostgreSQL database shared by `replicas` replicas.
    Postgres {
        /// The scratch database's URL.
        url: String,
        /// How many replicas (stores, servers, tickers) share it.
        replicas: usize,
    },
}

impl Backend {
    /// `sled` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Replicas on the store (1 on sled).
    pub fn replicas(&self) -> usize {
        match self {
            Backend::Sled => 1,
            Backend::Postgres { replicas, .. } => (*replicas).max(1),
        }
    }

    /// Opens replica `i`'s own store instance (each replica has its own
    /// store, as separate processes would). `path` is the sled directory.
    pub fn open_store(&self, path: &Path) -> anyhow::Result<crate::store::SharedStore> {
        match self {
            Backend::Sled => Ok(std::sync::Arc::new(
                crate::store::SledStore::open_with_cache(path, 128 * 1024 * 1024)
                    .context("opening the bench store")?,
            )),
            Backend::Postgres { url, .. } => Ok(std::sync::Arc::new(
                crate::store::PgStore::open(url, 8).context("opening the bench database")?,
            )),
        }
    }

    /// `base` pointed at this backend as replica `replica`; the store
    /// directory (with PostgreSQL: only the webhook key file, shared by the
    /// replicas as a configured key would be) is `store_dir`.
    pub fn settings(&self, base: &Settings, store_dir: &Path, replica: usize) -> Settings {
        let mut s = base.clone();
        s.store.path = store_dir.to_path_buf();
        match self {
            Backend::Sled => s.store.backend = StoreBackend::Sled,
            Backend::Postgres { url, .. } => {
                s.store.backend = StoreBackend::Postgres;
                s.store.database_url = Some(DatabaseUrl::new(url.clone()));
                s.store.database_url_file = None;
            }
        }
        s.cluster.replica_id = Some(format!("bench-{replica}"));
        s
    }
}

/// One figure of one backend, for the closing table.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What it is (`accepted items/s`).
    pub name: String,
    /// The measured value, formatted.
    pub value: String,
    /// The target, if there is one (`≥ 20,000 on PostgreSQL, 3 replicas`).
    pub target: String,
}

impl Figure {
    /// A figure.
    pub fn new(name: &str, value: impl Into<String>, target: &str) -> Self {
        Figure {
            name: name.to_string(),
            value: value.into(),
            target: target.to_string(),
        }
    }
}

/// A scratch database, dropped (with its connections) when this is.
#[derive(Debug)]
pub struct ScratchDb {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl ScratchDb {
    /// Creates `aupd_bench_<random>` through `admin`.
    pub fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("aupd_bench_{}", uuid::Uuid::now_v7().simple());
        let url = crate::store::create_database(admin, &name)
            .with_context(|| format!("creating the scratch database {name}"))?;
        Ok(ScratchDb {
            admin: admin.to_string(),
            name,
            url,
        })
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Err(e) = crate::store::drop_database(&self.admin, &self.name) {
            eprintln!("could not drop the scratch database {}: {e}", self.name);
        }
    }
}

/// Runs `bench` once per backend chosen by `args` and prints the closing
/// table of figures. `bench` prints its own lines as it goes.
pub fn run_on_backends(
    title: &str,
    args: &BackendArgs,
    mut bench: impl FnMut(&Backend) -> anyhow::Result<Vec<Figure>>,
) -> anyhow::Result<i32> {
    let choice = args.backend.unwrap_or(if args.database_url.is_some() {
        BackendChoice::Both
    } else {
        BackendChoice::Sled
    });
    let wants_pg = matches!(choice, BackendChoice::Postgres | BackendChoice::Both);
    let admin = match (&args.database_url, wants_pg) {
        (Some(u), true) => Some(u.clone()),
        (None, true) => anyhow::bail!("--backend postgres needs --database-url (an admin URL)"),
        _ => None,
    };
    let mut rows: Vec<(&'static str, usize, Figure)> = Vec::new();
    if matches!(choice, BackendChoice::Sled | BackendChoice::Both) {
        println!("== {title} on sled ==");
        let backend = Backend::Sled;
        for f in bench(&backend)? {
            rows.push((backend.name(), 1, f));
        }
    }
    if let Some(admin) = admin {
        let db = ScratchDb::create(&admin)?;
        let backend = Backend::Postgres {
            url: db.url.clone(),
            replicas: args.replicas.max(1),
        };
        println!(
            "== {title} on postgres, {} replica(s) on scratch database {} ==",
            backend.replicas(),
            db.name
        );
        let figures = bench(&backend);
        drop(db);
        for f in figures? {
            rows.push((backend.name(), backend.replicas(), f));
        }
    }
    print_table(title, &rows);
    Ok(0)
}

fn print_table(title: &str, rows: &[(&str, usize, Figure)]) {
    let w = |f: &dyn Fn(&(&str, usize, Figure)) -> usize, min: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(min)
    };
    let wn = w(&|r| r.2.name.chars().count(), 6);
    let wv = w(&|r| r.2.value.chars().count(), 5);
    println!("\n{title}: figures by backend");
    println!(
        "  {:<8}  {:>8}  {:<wn$}  {:>wv$}  target",
        "backend", "replicas", "figure", "value"
    );
    for (backend, replicas, f) in rows {
        println!(
            "  {:<8}  {:>8}  {:<wn$}  {:>wv$}  {}",
            backend, replicas, f.name, f.value, f.target
        );
    }
}

/// N replicas of the real application on one backend, each serving HTTP on
/// its own loopback port, on one runtime of their own.
pub struct Cluster {
    /// `http://127.0.0.1:PORT` of each replica, in replica order.
    pub urls: Vec<String>,
    handles: Vec<actix_web::dev::ServerHandle>,
    running: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    /// Starts `backend.replicas()` applications from `base` (its store
    /// directory is set to `dir/store`; `bind` to port 0), each with its own
    /// store instance and `cluster.replica_id`, built with `options()`.
    pub fn start(
        base: &Settings,
        backend: &Backend,
        dir: &Path,
        options: impl Fn() -> BuildOptions,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the server runtime")?;
        let store_dir: PathBuf = dir.join("store");
        let mut urls = Vec::new();
        let mut handles = Vec::new();
        let mut running = Vec::new();
        for i in 0..backend.replicas() {
            let mut settings = backend.settings(base, &store_dir, i);
            settings.server.bind = "127.0.0.1:0".into();
            let (url, handle, run) = runtime.block_on(async {
                let app = Application::build_with(&settings, options())
                    .with_context(|| format!("starting replica {i}"))?;
                let url = format!("http://127.0.0.1:{}", app.port());
                let handle = app.handle();
                let run = tokio::spawn(app.run_until_stopped());
                Ok::<_, anyhow::Error>((url, handle, run))
            })?;
            urls.push(url);
            handles.push(handle);
            running.push(run);
        }
        Ok(Cluster {
            urls,
            handles,
            running,
            runtime,
        })
    }

    /// The URL load worker `w` sends to: round-robin over the replicas.
    pub fn url_for(&self, w: usize) -> &str {
        &self.urls[w % self.urls.len()]
    }

    /// Stops every replica and waits for them.
    pub fn stop(self) -> anyhow::Result<()> {
        let Cluster {
            handles,
            running,
            runtime,
            ..
        } = self;
        runtime.block_on(async move {
            for h in &handles {
                h.stop(true).await;
            }
            for r in running {
                r.await.context("joining a replica")??;
            }
            Ok(())
        })
    }
}
