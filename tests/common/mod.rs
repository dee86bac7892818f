//! Shared test support: one `spawn_app()` that starts the real server with a
//! temporary on-disk store, and a fake tenant site on loopback.
//!
//! With `AUPD_TEST_DATABASE_URL` set (an admin URL of a throwaway
//! PostgreSQL cluster), every store is a fresh PostgreSQL database instead
//! of sled: its name is kept in a file beside the store path, so a test
//! that restarts with the same directory finds the same database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod receiver;

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aupd::app::Application;
use aupd::config::Settings;
use aupd::sampling::guard::{Resolver, StaticResolver};
use serde_json::{json, Value};

/// The admin token of every test app.
pub const TOKEN: &str = "test-admin-token-0123456789";
/// The same, by the name older tests use.
pub const ADMIN_TOKEN: &str = TOKEN;

/// The PostgreSQL admin URL the suite runs on, if it runs on PostgreSQL.
pub fn test_database_admin() -> Option<String> {
    std::env::var("AUPD_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Where the name of the database of the store at `store_path` is kept:
/// beside the store path, in the test's directory.
fn database_name_file(store_path: &Path) -> PathBuf {
    let dir = store_path.parent().unwrap_or(Path::new("."));
    let name = store_path
        .file_name()
        .map_or("store".into(), |n| n.to_string_lossy().into_owned());
    dir.join(format!("{name}.pg-database"))
}

/// On PostgreSQL: the URL of the database of the store at `store_path`,
/// created on first use (named `aupd_t_…`, so a leftover is easy to tell).
pub fn test_database(store_path: &Path) -> Option<String> {
    let admin = test_database_admin()?;
    let file = database_name_file(store_path);
    let name = match std::fs::read_to_string(&file) {
        Ok(name) => name.trim().to_string(),
        Err(_) => {
            let name = format!("aupd_t_{}", uuid::Uuid::now_v7().simple());
            aupd::store::create_database(&admin, &name).unwrap();
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &name).unwrap();
            name
        }
    };
    Some(aupd::store::database_url(&admin, &name).unwrap())
}

/// The name of the database of the store at `store_path`, if it has one.
fn test_database_name(store_path: &Path) -> Option<String> {
    test_database_admin()?;
    std::fs::read_to_string(database_name_file(store_path))
        .ok()
        .map(|n| n.trim().to_string())
}

fn drop_database_named(name: &str) {
    if let Some(admin) = test_database_admin() {
        if let Err(e) = aupd::store::drop_database(&admin, name) {
            eprintln!("could not drop test database {name}: {e}");
        }
    }
}

/// Points `settings` at the store at `store_path`: sled there, or its
/// PostgreSQL database when the suite runs on PostgreSQL.
pub fn use_test_store(settings: &mut Settings, store_path: &Path) {
    settings.store.path = store_path.to_path_buf();
    if let Some(url) = test_database(store_path) {
        settings.store.backend = aupd::config::StoreBackend::Postgres;
        settings.store.database_url = Some(aupd::config::DatabaseUrl::new(url));
        settings.store.pool_size = 8;
    }
}

/// The `[store]` section of a config file for the store at `store_path`.
pub fn store_toml(store_path: &Path) -> String {
    let mut section = format!("[store]\npath = {:?}\n", store_path.display().to_string());
    if let Some(url) = test_database(store_path) {
        section.push_str(&format!(
            "backend = \"postgres\"\ndatabase_url = {url:?}\npool_size = 8\n"
        ));
    }
    section
}

/// The `AUPD__STORE__…` variables for a subprocess using the store at
/// `store_path`.
pub fn store_env(store_path: &Path) -> Vec<(String, String)> {
    let mut env = vec![(
        "AUPD__STORE__PATH".to_string(),
        store_path.display().to_string(),
    )];
    if let Some(url) = test_database(store_path) {
        env.push(("AUPD__STORE__BACKEND".into(), "postgres".into()));
        env.push(("AUPD__STORE__DATABASE_URL".into(), url));
    }
    env
}

/// Opens the store at `store_path` directly (the app using it stopped):
/// sled, or its PostgreSQL database when the suite runs on PostgreSQL.
pub fn open_test_store(store_path: &Path) -> aupd::store::SharedStore {
    match test_database(store_path) {
        Some(url) => Arc::new(aupd::store::PgStore::open(&url, 4).unwrap()),
        None => Arc::new(aupd::store::SledStore::open(store_path).unwrap()),
    }
}

/// Drops the PostgreSQL database of the store at `store_path`, if it has
/// one (for tests that open stores themselves; apps drop theirs).
pub fn drop_test_database(store_path: &Path) {
    if let Some(name) = test_database_name(store_path) {
        drop_database_named(&name);
    }
}

/// Drops a test app's database with the app, unless the app was stopped
/// to be restarted on the same directory.
/// (It holds the name: the directory with the name file may be gone first.)
struct DatabaseGuard {
    name: Option<String>,
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            drop_database_named(&name);
        }
    }
}

/// A running aupd.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The command path of the running app (drive cases without routes).
    pub cases: aupd::service::cases::CaseService,
    /// A client with the admin token set.
    pub client: reqwest::Client,
    /// Stops the server.
    pub handle: actix_web::dev::ServerHandle,
    /// The store directory (kept alive with the app; reusable for a restart).
    pub store_dir: Arc<tempfile::TempDir>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    database: DatabaseGuard,
}

/// How to start a test app.
pub struct Options {
    /// Changes to the test settings.
    pub configure: Box<dyn FnOnce(&mut Settings) + Send>,
    /// Host table for the SSRF guard (default: the system resolver).
    pub hosts: Option<Vec<(String, Vec<IpAddr>)>>,
    /// Reuse a store directory (restart).
    pub store_dir: Option<Arc<tempfile::TempDir>>,
    /// A clock the test moves by hand (default: the system clock).
    pub clock: Option<Arc<aupd::clock::ManualClock>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            configure: Box::new(|_| {}),
            hosts: None,
            store_dir: None,
            clock: None,
        }
    }
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,aupd=debug")
            .with_test_writer()
            .try_init();
    }
}

/// An HTTP client that sends the test admin token with every request.
pub fn admin_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Starts aupd with defaults for tests: loopback allow-listed, a 20 ms
/// sampler tick, no per-host spacing, a fixed sampling seed.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Starts aupd with test defaults, letting the test change the settings.
pub async fn spawn_app_configured(change: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    spawn_app_with(Options {
        configure: Box::new(change),
        ..Options::default()
    })
    .await
}

/// Starts aupd with `options`.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let resolver: Option<Arc<dyn Resolver>> = options
        .hosts
        .clone()
        .map(|h| Arc::new(StaticResolver::new(h)) as Arc<dyn Resolver>);
    start(options, resolver).await
}

/// Starts aupd with `options`, resolving hosts with `resolver`.
pub async fn spawn_app_with_resolver(options: Options, resolver: Arc<dyn Resolver>) -> TestApp {
    start(options, Some(resolver)).await
}

async fn start(options: Options, resolver: Option<Arc<dyn Resolver>>) -> TestApp {
    init_logs();
    let store_dir = options
        .store_dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let mut settings = Settings::load(None, Vec::<(String, String)>::new()).unwrap();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.shutdown_grace_secs = 1;
    use_test_store(&mut settings, &store_dir.path().join("store"));
    settings.policy.dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into();
    settings.auth.admin_token = Some(aupd::config::Secret::new(TOKEN));
    settings.sampling.tick_ms = 20;
    settings.sampling.per_host_min_interval_ms = 0;
    settings.sampling.per_host_concurrency = 4;
    settings.sampling.fetch_timeout_secs = 5;
    settings.sampling.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
    settings.sampling.rng_seed = Some(42);
    (options.configure)(&mut settings);
    let mut build = aupd::app::BuildOptions::default();
    if let Some(resolver) = resolver {
        build.resolver = resolver;
    }
    if let Some(clock) = options.clock {
        build.clock = clock;
    }
    let app = Application::build_with(&settings, build).unwrap();
    let database = DatabaseGuard {
        name: test_database_name(&store_dir.path().join("store")),
    };
    let base = format!("http://127.0.0.1:{}", app.port());
    let cases = app.cases();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = admin_client();
    TestApp {
        cases,
        base,
        client,
        handle,
        store_dir,
        task,
        database,
    }
}

impl TestApp {
    /// `GET path` with the admin token; the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.get(path).await
    }

    /// A client with no token at all.
    pub fn anonymous(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// `POST path` with a JSON body and the admin token; the raw response.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    /// `method path` with `token` instead of the admin token.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request failed");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Makes a token with `role` for `name` through the API; returns the secret.
    pub async fn token(&self, role: &str, name: &str) -> String {
        let (status, body) = self
            .post("/v1/tokens", &json!({"role": role, "name": name}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Stops the app gracefully and waits for it (store flushed and closed).
    /// The database stays for a restart on the returned directory.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.database.name = None;
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        self.store_dir
    }

    /// GET `path`, returning status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends JSON with `method` to `path`.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// POSTs raw bytes as JSON.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers a tenant.
    pub async fn create_tenant(&self, id: &str, tier: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/tenants",
                &json!({"id": id, "name": format!("Tenant {id}"), "risk_tier": tier,
                        "contacts": [{"name": "Abuse desk", "email": "abuse@tenant.example"}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Adds a source; returns its id.
    pub async fn create_source(&self, tenant: &str, body: Value) -> String {
        let (status, body) = self
            .post(&format!("/v1/tenants/{tenant}/sources"), &body)
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// A source with its state.
    pub async fn source(&self, tenant: &str, id: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1/tenants/{tenant}/sources/{id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Every sample of a tenant.
    pub async fn samples(&self, tenant: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/v1/tenants/{tenant}/samples?limit=10000"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["samples"].as_array().unwrap().clone()
    }

    /// Events of a kind.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        let (_, body) = self.get("/v1/events?limit=10000").await;
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most 15 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A text the default policy flags as violent incitement.
pub fn violating(i: usize) -> String {
    format!("post {i}: we must storm the capitol tomorrow, bring your guns")
}

/// An ordinary text.
pub fn clean(i: usize) -> String {
    format!("post {i}: the weather at the lake was lovely and we had a picnic with friends")
}

/// `n` posts whose last `bad` are violating.
pub fn posts_with_violations_at_the_end(n: usize, bad: usize) -> Vec<String> {
    (0..n)
        .map(|i| if i >= n - bad { violating(i) } else { clean(i) })
        .collect()
}

/// Waits until case `id` reaches `state`, and returns the case.
pub async fn wait_for_state(app: &TestApp, id: &str, state: &str) -> Value {
    eventually(&format!("case {id} to reach {state}"), || async {
        let (_, c) = app.get(&format!("/v1/cases/{id}")).await;
        (c["state"] == state).then_some(c)
    })
    .await
}

/// The newest case of `tenant` (JSON null when it has none).
pub async fn case_of(app: &TestApp, tenant: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/cases?tenant={tenant}&scope=all"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["cases"][0].clone()
}

/// Pushes 20 flagged posts for `tenant` and waits for the case they open.
pub async fn case_from_evidence(app: &TestApp, tenant: &str) -> Value {
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"text": violating(i), "url": format!("https://{tenant}.example/p/{i}")}))
        .collect();
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/content"),
            &json!({"items": items}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("a case opened from sampled evidence", || async {
        let c = case_of(app, tenant).await;
        c.is_object().then_some(c)
    })
    .await
}

/// Runs the built `aupd` binary as a user would (no `AUPD_CONFIG` from the
/// test's environment) and returns what it printed.
pub fn run_aupd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args(args)
        .env_remove("AUPD_CONFIG")
        .output()
        .expect("running aupd")
}

/// What the fake site saw.
#[derive(Default)]
pub struct SiteLog {
    /// Requests in flight now.
    pub in_flight: AtomicUsize,
    /// Most requests in flight at once.
    pub max_in_flight: AtomicUsize,
    /// Start instants of page requests.
    pub page_starts: Mutex<Vec<Instant>>,
    /// User-Agent headers seen.
    pub user_agents: Mutex<Vec<String>>,
    /// Requests served.
    pub requests: AtomicUsize,
}

struct SiteState {
    posts: Mutex<Vec<String>>,
    log: Arc<SiteLog>,
    page_delay: Duration,
}

/// A fake tenant site on loopback serving the same posts as JSON, RSS,
/// Atom, HTML pages and a sitemap.
pub struct FakeSite {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it saw.
    pub log: Arc<SiteLog>,
    posts: web::Data<SiteState>,
    handle: actix_web::dev::ServerHandle,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn json_feed(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    note(&state, &req);
    let posts = state.posts.lock().unwrap().clone();
    let items: Vec<Value> = posts
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"id": i, "body": p, "link": format!("/p/{i}")}))
        .collect();
    HttpResponse::Ok().json(json!({"data": {"posts": items}}))
}

async fn rss(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    note(&state, &req);
    let posts = state.posts.lock().unwrap().clone();
    let mut xml =
        String::from(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>"#);
    for (i, p) in posts.iter().enumerate() {
        xml.push_str(&format!(
            "<item><link>/p/{i}</link><guid>{i}</guid><description>&lt;p&gt;{}&lt;/p&gt;</description></item>",
            escape(&escape(p))
        ));
    }
    xml.push_str("</channel></rss>");
    HttpResponse::Ok()
        .content_type("application/rss+xml")
        .body(xml)
}

async fn atom(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    note(&state, &req);
    let posts = state.posts.lock().unwrap().clone();
    let mut xml = String::from(r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>Site</title>"#);
    for (i, p) in posts.iter().enumerate() {
        xml.push_str(&format!(
            "<entry><id>urn:post:{i}</id><link href=\"/p/{i}\"/><content type=\"html\">{}</content></entry>",
            escape(p)
        ));
    }
    xml.push_str("</feed>");
    HttpResponse::Ok()
        .content_type("application/atom+xml")
        .body(xml)
}

async fn sitemap(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    note(&state, &req);
    let n = state.posts.lock().unwrap().len();
    let mut xml = String::from(r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">"#);
    for i in 0..n {
        xml.push_str(&format!("<url><loc>/p/{i}</loc></url>"));
    }
    xml.push_str("</urlset>");
    HttpResponse::Ok().content_type("application/xml").body(xml)
}

async fn page(
    state: web::Data<SiteState>,
    req: HttpRequest,
    path: web::Path<usize>,
) -> HttpResponse {
    note(&state, &req);
    state.log.page_starts.lock().unwrap().push(Instant::now());
    let now = state.log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.log.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(state.page_delay).await;
    state.log.in_flight.fetch_sub(1, Ordering::SeqCst);
    let Some(post) = state.posts.lock().unwrap().get(*path).cloned() else {
        return HttpResponse::NotFound().finish();
    };
    // The script repeats violating words; extraction must drop it.
    HttpResponse::Ok().content_type("text/html").body(format!(
        "<html><head><title>Post</title><style>p {{ color: red }}</style>\
         <script>var x = \"we must storm the capitol tomorrow, bring your guns\";</script></head>\
         <body><article><p>{}</p></article></body></html>",
        escape(&post)
    ))
}

fn note(state: &SiteState, req: &HttpRequest) {
    state.log.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(ua) = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
    {
        state.log.user_agents.lock().unwrap().push(ua.to_string());
    }
}

async fn redirect_to(target: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", target))
        .finish()
}

impl FakeSite {
    /// Starts the site with `posts`; page requests take `page_delay`.
    pub async fn start(posts: Vec<String>, page_delay: Duration) -> FakeSite {
        let log = Arc::new(SiteLog::default());
        let state = web::Data::new(SiteState {
            posts: Mutex::new(posts),
            log: log.clone(),
            page_delay,
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/posts.json", web::get().to(json_feed))
                .route("/rss.xml", web::get().to(rss))
                .route("/atom.xml", web::get().to(atom))
                .route("/sitemap.xml", web::get().to(sitemap))
                .route("/p/{i}", web::get().to(page))
                .route(
                    "/sitemap-index.xml",
                    web::get().to(|| async {
                        HttpResponse::Ok().content_type("application/xml").body(
                            "<sitemapindex><sitemap><loc>/sitemap.xml</loc></sitemap></sitemapindex>",
                        )
                    }),
                )
                .route(
                    "/gone",
                    web::get().to(|| async { HttpResponse::Gone().finish() }),
                )
                .route(
                    "/limited",
                    web::get().to(|| async {
                        HttpResponse::TooManyRequests()
                            .insert_header(("retry-after", "120"))
                            .finish()
                    }),
                )
                .route(
                    "/to-metadata",
                    web::get().to(|| redirect_to("http://169.254.169.254/latest/meta-data/iam/")),
                )
                .route(
                    "/to-private",
                    web::get().to(|| redirect_to("http://10.0.0.7/admin")),
                )
                .route("/loop", web::get().to(|| redirect_to("/loop")))
                .route(
                    "/big",
                    web::get().to(|| async { HttpResponse::Ok().body(vec![b'a'; 300_000]) }),
                )
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeSite {
            base,
            log,
            posts: state,
            handle,
        }
    }

    /// Removes every post: pages answer 404 from now on.
    pub fn remove_all_posts(&self) {
        self.posts.posts.lock().unwrap().clear();
    }

    /// Adds posts at the end.
    pub fn add_posts(&self, more: Vec<String>) {
        self.posts.posts.lock().unwrap().extend(more);
    }
}

impl Drop for FakeSite {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// The repository's shipped policy directory.
pub fn shipped_policies() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Copies a directory tree (policy files and models).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A real `aupd serve` process on a free loopback port, with its config and
/// store in a test's directory; killed when dropped, even when an assertion
/// fails.
pub struct Daemon {
    pub child: std::process::Child,
    pub base: String,
    /// Sends the admin token with every request.
    pub client: reqwest::Client,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `aupd serve` with a config file in `dir`: `[server]` on a free
/// port plus the lines in `server`, the store in `dir/store`, the
/// repository's policy, [`TOKEN`] as the admin token, then the sections in
/// `rest`. Its standard error goes to `stderr`. Returns once `/readyz`
/// answers (within 30 s).
pub async fn start_daemon(
    dir: &std::path::Path,
    server: &str,
    rest: &str,
    stderr: std::process::Stdio,
) -> Daemon {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n{server}\
             {}[policy]\ndir = \"{}\"\n\
             [auth]\nadmin_token = \"{TOKEN}\"\n{rest}",
            store_toml(&dir.join("store")),
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let client = admin_client();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "aupd did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Daemon {
        child,
        base,
        client,
    }
}
