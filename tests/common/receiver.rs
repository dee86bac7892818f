//! A real webhook receiver on loopback: verifies every message the way the
//! Standard Webhooks reference libraries do (`delivery::signing::verify`),
//! logs it, and answers as each test path is told to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aupd::delivery::signing::{verify, SigningSecret};

/// How one receiver path answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Answer `fail_status` to this many requests first.
    pub fail_first: usize,
    /// The failing status.
    pub fail_status: u16,
    /// A `Retry-After` (seconds) sent with failures.
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            fail_first: 0,
            fail_status: 500,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path name (`/{name}`).
    pub name: String,
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: serde_json::Value,
    /// For each secret registered for the path: whether it verified.
    pub verified: Vec<bool>,
    /// What the receiver answered.
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    behaviors: Mutex<HashMap<String, Behavior>>,
    secrets: Mutex<HashMap<String, Vec<SigningSecret>>>,
    log: Mutex<Vec<Received>>,
    /// Requests being answered now, and the most at once, by name.
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<State>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0`.
    pub async fn start() -> Receiver {
        let state = Arc::new(State::default());
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::default().limit(1 << 20))
                .route("/{name}", web::post().to(receive))
        })
        .workers(2)
        .max_connection_rate(10_000)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// The URL of path `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Sets how `name` answers.
    pub fn behave(&self, name: &str, b: Behavior) {
        self.state.behaviors.lock().unwrap().insert(name.into(), b);
    }

    /// Sets the secrets `name` verifies with.
    pub fn trust(&self, name: &str, secrets: &[&str]) {
        let parsed = secrets
            .iter()
            .map(|s| SigningSecret::parse(s).unwrap())
            .collect();
        self.state
            .secrets
            .lock()
            .unwrap()
            .insert(name.into(), parsed);
    }

    /// Everything received on `name`, oldest first.
    pub fn received(&self, name: &str) -> Vec<Received> {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.name == name)
            .cloned()
            .collect()
    }

    /// The most requests to `name` being answered at once.
    pub fn most_at_once(&self, name: &str) -> usize {
        self.state
            .in_flight
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |(_, most)| *most)
    }

    /// Waits until `name` has received `n` requests answered 2xx (or panics
    /// after `within`); returns them.
    pub async fn wait_for(&self, name: &str, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let ok: Vec<Received> = self
                .received(name)
                .into_iter()
                .filter(|r| (200..300).contains(&r.answered))
                .collect();
            if ok.len() >= n {
                return ok;
            }
            if start.elapsed() > within {
                panic!(
                    "{name}: {} of {n} deliveries arrived within {within:?}; got {:?}",
                    ok.len(),
                    self.received(name)
                        .iter()
                        .map(|r| (r.id.clone(), r.answered))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    state: web::Data<State>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let name = name.into_inner();
    let header = |h: &str| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or(0);
    let signature = header("webhook-signature");
    let now = jiff::Timestamp::now().as_second();
    let verified = state
        .secrets
        .lock()
        .unwrap()
        .get(&name)
        .map(|secrets| {
            secrets
                .iter()
                .map(|s| verify(s, &id, timestamp, &body, &signature, now, 300).is_ok())
                .collect()
        })
        .unwrap_or_default();
    let behavior = state
        .behaviors
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or_default();
    {
        let mut in_flight = state.in_flight.lock().unwrap();
        let (now, most) = in_flight.entry(name.clone()).or_default();
        *now += 1;
        *most = (*most).max(*now);
    }
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if let Some((now, _)) = state.in_flight.lock().unwrap().get_mut(&name) {
        *now -= 1;
    }
    let mut log = state.log.lock().unwrap();
    let seen = log.iter().filter(|r| r.name == name).count();
    let answered = if seen < behavior.fail_first {
        behavior.fail_status
    } else {
        204
    };
    log.push(Received {
        name,
        id,
        timestamp,
        signature,
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        verified,
        answered,
        at: Instant::now(),
    });
    drop(log);
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap());
    if answered >= 300 {
        if let Some(s) = behavior.retry_after {
            response.insert_header(("retry-after", s.to_string()));
        }
    }
    response.finish()
}
