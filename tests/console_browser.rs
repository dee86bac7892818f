//! The console in a real browser: headless Chromium driven over WebDriver
//! against a real aupd with seeded cases. Off unless `AUPD_BROWSER_TESTS=1`
//! (see `.ci/browser-tests.sh`), so plain `cargo test` needs no browser.
//! Screenshots go to `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::receiver::Receiver;
use common::{eventually, spawn_app_with, violating, FakeSite, Options, TestApp};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// One browser at a time: the build machines have two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn enabled() -> bool {
    if std::env::var("AUPD_BROWSER_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: browser tests run with AUPD_BROWSER_TESTS=1 (see .ci/browser-tests.sh)");
    false
}

/// chromedriver plus a headless Chromium session with a fresh profile.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        eventually("chromedriver to listen", || async {
            reqwest::get(format!("{url}/status")).await.ok().map(|_| ())
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session with Chromium");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// Waits until `css` holds `needle` in its text.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                last = e.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` never showed `{needle}`; last text: {last}");
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn sign_in(&self, app: &TestApp, token: &str) {
        self.client
            .goto(&format!("{}/console/", app.base))
            .await
            .unwrap();
        let input = self.wait_for("#token").await;
        input.send_keys(token).await.unwrap();
        self.wait_for("form.signin button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        self.wait_for("#queue-results table, #queue-results .note")
            .await;
    }

    async fn sign_out(&self) {
        self.wait_for("#sign-out").await.click().await.unwrap();
        self.wait_for("#token").await;
    }

    async fn open_case(&self, app: &TestApp, id: &str) {
        self.client
            .goto(&format!("{}/console/#/case/{id}", app.base))
            .await
            .unwrap();
        self.wait_for("#evidence .evidence-list").await;
    }

    /// A screenshot of `height` pixels of the page from its top.
    async fn screenshot_tall(&self, name: &str, height: u32) {
        self.client.set_window_size(1280, height).await.unwrap();
        self.js("window.scrollTo(0, 0)").await;
        self.screenshot(name).await;
        self.client.set_window_size(1280, 1000).await.unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

async fn seeded_app() -> TestApp {
    spawn_app_with(Options {
        configure: Box::new(|s| {
            s.enforcement.tick_ms = 20;
            s.sampling.intake_sample_rate = 1.0;
        }),
        ..Options::default()
    })
    .await
}

/// Pushes `texts` for `tenant` and waits for the case they open.
async fn case_from_content(app: &TestApp, tenant: &str, texts: Vec<String>) -> Value {
    app.create_tenant(tenant, "standard").await;
    let items: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"text": t, "url": format!("https://{tenant}.example/p/{i}")}))
        .collect();
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/content"),
            &json!({"items": items}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually(&format!("a case for {tenant}"), || async {
        let (_, b) = app.get(&format!("/v1/cases?tenant={tenant}")).await;
        b["cases"][0]["id"]
            .is_string()
            .then(|| b["cases"][0].clone())
    })
    .await
}

#[tokio::test]
async fn an_operator_works_the_queue_reads_highlighted_evidence_and_escalates_a_case() {
    if !enabled() {
        return;
    }
    let _one = SERIAL.lock().await;
    let app = seeded_app().await;
    let olga = app.token("operator", "olga").await;
    let first = case_from_content(&app, "parlor", (0..5).map(violating).collect()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = case_from_content(&app, "forum", (0..5).map(violating).collect()).await;
    // A reported case waits in triage with no clock running: last.
    let site = FakeSite::start(vec![violating(0)], Duration::ZERO).await;
    app.create_tenant("quiet", "standard").await;
    let rita = app.token("reporter", "rita").await;
    let (status, third) = app
        .call_as(
            &rita,
            reqwest::Method::POST,
            "/v1/reports",
            Some(&json!({"tenant": "quiet", "category": "violent-incitement",
                "urls": [format!("{}/p/0", site.base)], "description": "a call to violence"})),
        )
        .await;
    assert_eq!(status, 202, "{third}");
    let third = json!({"id": third["case"]});

    let b = Browser::start().await;
    b.sign_in(&app, &olga).await;
    assert_eq!(b.text("#who-name").await, "olga (operator)");
    let rows = b
        .client
        .find_all(Locator::Css("table.queue tbody tr"))
        .await
        .unwrap();
    let mut order = Vec::new();
    for r in &rows {
        order.push(r.attr("data-case").await.unwrap().unwrap());
    }
    let want: Vec<String> = [&first, &second, &third]
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        order, want,
        "the queue is in deadline order, no deadline last"
    );
    let countdown = b.text("tbody tr:first-child .countdown").await;
    assert!(
        countdown.contains("Due soon") && countdown.contains("left"),
        "{countdown}"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_ne!(
        b.text("tbody tr:first-child .countdown").await,
        countdown,
        "the countdown is live"
    );
    assert_eq!(
        b.text("tbody tr:last-child .countdown").await,
        "– No deadline running"
    );
    b.screenshot("queue").await;
    // A missed deadline moves the case on at once, so the overdue words are
    // checked on the console's own module rather than waited for.
    let overdue = b
        .js("return import('./dom.js').then((m) => m.urgency(-65))")
        .await;
    assert_eq!(
        overdue,
        json!({"level": "overdue", "icon": "✖", "label": "OVERDUE by 1m 05s"})
    );
    // Evidence with offsets marks exactly its words, counted in UTF-8 bytes
    // ("café" is five), not every occurrence of them; evidence without
    // offsets is searched for, white space folded as the excerpt folds it.
    let marked = b
        .js(r#"return import('./dom.js').then((m) => {
            const r = m.highlight('café kill, kill them. Storm the capitol!', [
              { category: 'c', detector: 'd', text: 'kill', start: 12, end: 16 },
              { category: 'c', detector: 'e', text: 'storm  the\ncapitol' },
              { category: 'c', detector: 'f', text: 'gone' },
            ]);
            const box = document.createElement('div');
            box.append(r.fragment);
            return { marks: [...box.querySelectorAll('mark')].map((x) => x.textContent),
                     text: box.textContent, missing: r.missing.map((x) => x.detector) };
          })"#)
        .await;
    assert_eq!(
        marked,
        json!({"marks": ["kill", "Storm the capitol"],
               "text": "café kill, kill them. Storm the capitol!",
               "missing": ["f"]})
    );
    let second = b
        .js(r#"return import('./dom.js').then((m) => {
            const box = document.createElement('div');
            box.append(m.highlight('café kill, kill them', [
              { category: 'c', detector: 'd', text: 'kill', start: 12, end: 16 }]).fragment);
            return box.innerHTML;
          })"#)
        .await;
    assert_eq!(
        second,
        json!("café kill, <mark title=\"Matched: c (d)\">kill</mark> them")
    );

    // Filters narrow the queue through the API's own query.
    b.wait_for("#f-tenant")
        .await
        .send_keys("forum")
        .await
        .unwrap();
    b.wait_for("form.filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("#queue-summary", "1 case,").await;
    let only = b.wait_for("table.queue tbody tr").await;
    assert_eq!(only.attr("data-case").await.unwrap().unwrap(), want[1]);
    b.wait_for("#f-reset").await.click().await.unwrap();
    b.wait_for_text("#queue-summary", "3 cases").await;

    b.wait_for("tbody tr:first-child a")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "Case for tenant parlor").await;
    let mark = b.wait_for("#evidence mark").await;
    let marked = mark.text().await.unwrap_or_default();
    let block = b.wait_for("#evidence .evidence-text").await;
    assert!(block
        .attr("class")
        .await
        .unwrap()
        .unwrap()
        .contains("blurred"));
    b.wait_for("#evidence button.reveal")
        .await
        .click()
        .await
        .unwrap();
    assert!(!block
        .attr("class")
        .await
        .unwrap()
        .unwrap()
        .contains("blurred"));
    let _ = marked;
    // Every detector's evidence is marked (a classifier's top words too);
    // the phrase match must be among them.
    let marks = b
        .js("return Array.from(document.querySelectorAll('#evidence mark')).map((m) => m.textContent.toLowerCase())")
        .await;
    assert!(
        marks
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "storm the capitol"),
        "the matched span is marked: {marks}"
    );
    assert!(block
        .text()
        .await
        .unwrap()
        .contains("we must storm the capitol tomorrow"));
    b.wait_for("#tenant svg.prev-chart").await;
    b.screenshot_tall("case", 3200).await;
    b.js("document.getElementById('tenant').scrollIntoView()")
        .await;
    b.screenshot("case-prevalence-and-history").await;

    b.wait_for("#act-escalate").await.click().await.unwrap();
    b.wait_for("#act-reason")
        .await
        .send_keys("no answer from the tenant")
        .await
        .unwrap();
    b.wait_for("form.actions button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("#action-result", "The case is now escalated")
        .await;
    b.wait_for_text(".facts", "escalated").await;
    b.wait_for_text("#history", "escalated").await;
    let (_, c) = app.get(&format!("/v1/cases/{}", want[0])).await;
    assert_eq!(c["state"], "escalated");

    // Someone else moves the case on; the page is now stale, and the
    // refusal of the state machine is explained in words.
    let (status, body) = app
        .post(
            &format!("/v1/cases/{}/actions", want[0]),
            &json!({"action": "send_notice", "reason": "second notice"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    b.wait_for("#act-send_notice").await.click().await.unwrap();
    b.wait_for("#act-reason")
        .await
        .send_keys("again")
        .await
        .unwrap();
    b.wait_for("form.actions button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("#action-result .error", "Refused").await;
    b.screenshot_tall("case-after-action", 1400).await;

    // A reported case: operators see who reported it and the fetched page
    // with its matched words.
    b.open_case(&app, third["id"].as_str().unwrap()).await;
    b.wait_for_text("#reports", "filed by rita").await;
    b.wait_for("#evidence mark").await;

    // Tenants with their sources' health, and deliveries degrading
    // gracefully while this aupd has no deliveries API.
    app.create_source(
        "quiet",
        json!({"kind": "rss", "url": format!("{}/rss.xml", site.base),
               "budget_per_hour": 100, "interval_secs": 3600}),
    )
    .await;
    b.wait_for("#nav a[href='#/tenants']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "Tenants").await;
    b.wait_for_text("table.tenants", "rss.xml").await;
    b.screenshot("tenants").await;
    b.wait_for("#nav a[href='#/deliveries']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("main", "No dead deliveries.").await;
    b.wait_for("#d-status")
        .await
        .send_keys("Pending")
        .await
        .unwrap();
    b.wait_for("main form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("h1", "Webhook deliveries").await;
    assert!(b
        .js("return location.hash")
        .await
        .as_str()
        .unwrap()
        .ends_with("status=pending"));
    b.screenshot("deliveries").await;

    b.sign_out().await;
    assert_eq!(b.js("return sessionStorage.length").await, json!(0));
    // On a fresh load the first Tab reaches the skip link.
    b.client
        .goto(&format!("{}/console/", app.base))
        .await
        .unwrap();
    b.wait_for("#token").await;
    let tab = fantoccini::key::Key::Tab.chars().next().unwrap();
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: tab })
        .then(KeyAction::Up { value: tab });
    b.client.perform_actions(keys).await.unwrap();
    assert_eq!(
        b.js("return document.activeElement.textContent").await,
        json!("Skip to main content")
    );
    b.stop().await;
}

#[tokio::test]
async fn an_approver_cannot_approve_a_suspension_on_their_own_report() {
    if !enabled() {
        return;
    }
    let _one = SERIAL.lock().await;
    let app = seeded_app().await;
    let site = FakeSite::start(vec![violating(0)], Duration::ZERO).await;
    app.create_tenant("forum", "standard").await;
    let rita_reporter = app.token("reporter", "rita").await;
    let rita_approver = app.token("approver", "rita").await;
    let (status, report) = app
        .call_as(
            &rita_reporter,
            reqwest::Method::POST,
            "/v1/reports",
            Some(&json!({"tenant": "forum", "category": "violent-incitement",
                "urls": [format!("{}/p/0", site.base)], "description": "calls to storm the capitol"})),
        )
        .await;
    assert_eq!(status, 202, "{report}");
    let id = report["case"].as_str().unwrap().to_string();
    for action in ["escalate", "propose_suspension"] {
        let (status, body) = app
            .post(
                &format!("/v1/cases/{id}/actions"),
                &json!({"action": action, "reason": "repeat offender"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let b = Browser::start().await;
    b.sign_in(&app, &rita_approver).await;
    b.open_case(&app, &id).await;
    let approve = b.wait_for("#act-approve_suspension").await;
    assert!(
        !approve.is_enabled().await.unwrap(),
        "approving one's own report is disabled"
    );
    let why = b.text("#act-approve_suspension-help").await;
    assert!(why.contains("You reported this tenant"), "{why}");
    assert!(b
        .text("#reports")
        .await
        .contains("Reporter identities are shown to operators only"));
    b.wait_for_text("#history", "opened").await;
    assert_eq!(
        b.js("return document.querySelector('main').textContent.includes('rita')")
            .await,
        json!(false),
        "the reporter's name is shown to operators only"
    );
    b.screenshot_tall("own-report", 2400).await;
    b.stop().await;
}

#[tokio::test]
async fn markup_in_tenant_content_is_shown_as_text_and_never_runs() {
    if !enabled() {
        return;
    }
    let _one = SERIAL.lock().await;
    let app = seeded_app().await;
    let olga = app.token("operator", "olga").await;
    let evil = "we must storm the capitol <script>window.__xss = 1</script> \
                <img src=x onerror=\"window.__xss = 1; document.title = 'pwned'\"> bring your guns";
    let case = case_from_content(&app, "evil", vec![evil.to_string()]).await;
    let id = case["id"].as_str().unwrap();

    let b = Browser::start().await;
    b.sign_in(&app, &olga).await;
    b.open_case(&app, id).await;
    b.wait_for("#evidence button.reveal")
        .await
        .click()
        .await
        .unwrap();
    let text = b.text("#evidence .evidence-text").await;
    assert!(text.contains("<script>window.__xss = 1</script>"), "{text}");
    assert!(text.contains("<img src=x onerror="), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.js("return window.__xss === undefined").await, json!(true));
    assert_ne!(b.js("return document.title").await, json!("pwned"));
    assert_eq!(
        b.js("return document.querySelectorAll('main img, main script').length")
            .await,
        json!(0)
    );
    b.screenshot_tall("xss", 1800).await;
    b.stop().await;
}

#[tokio::test]
async fn the_console_shows_each_findings_own_evidence_groups_repeats_and_assigns_a_case() {
    if !enabled() {
        return;
    }
    let _one = SERIAL.lock().await;
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.enforcement.tick_ms = 20;
            s.sampling.intake_sample_rate = 1.0;
            s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
            s.delivery.poll_ms = 20;
        }),
        ..Options::default()
    })
    .await;
    let olga = app.token("operator", "olga").await;
    let receiver = Receiver::start().await;
    let (status, ep) = app
        .post("/v1/webhooks", &json!({"url": receiver.url("ops")}))
        .await;
    assert_eq!(status, 201, "{ep}");
    receiver.trust("ops", &[ep["secret"].as_str().unwrap()]);
    // One post is both a threat and incitement; four differ only in a number.
    let mut texts = vec![
        "I know where you live. I will kill you. We storm the capitol at noon, bring your guns."
            .to_string(),
    ];
    texts.extend((0..4).map(violating));
    case_from_content(&app, "parlor", texts).await;
    let cases = eventually("a threat case and an incitement case", || async {
        let (_, b) = app.get("/v1/cases?tenant=parlor").await;
        let cases = b["cases"].as_array().cloned().unwrap_or_default();
        let find = |cat: &str| {
            cases
                .iter()
                .find(|c| c["categories"].as_array().unwrap().contains(&json!(cat)))
                .map(|c| c["id"].as_str().unwrap().to_string())
        };
        Some((find("violent-threat")?, find("violent-incitement")?))
    })
    .await;
    let (threat, incitement) = cases;
    receiver.wait_for("ops", 2, Duration::from_secs(15)).await;

    let b = Browser::start().await;
    b.sign_in(&app, &olga).await;
    // The queue names each case by its id and counts what it holds.
    let row = format!("table.queue tr[data-case='{incitement}']");
    assert_eq!(b.text(&format!("{row} .case-id")).await, incitement);
    let (_, held) = app.get(&format!("/v1/cases/{incitement}")).await;
    let evidence = held["evidence"].as_array().unwrap().len();
    assert_eq!(
        b.text(&format!("{row} .counts")).await,
        format!("{evidence} evidence · 0 reports")
    );
    b.wait_for_text("#queue-summary", "2 noticed").await;

    // The threat finding shows the threat detectors' own matches.
    b.open_case(&app, &threat).await;
    let marks = b
        .js("return Array.from(document.querySelectorAll('#evidence mark')).map((m) => m.textContent.toLowerCase())")
        .await;
    let marks: Vec<&str> = marks
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        marks.contains(&"i know where you live") && marks.contains(&"i will kill you"),
        "{marks:?}"
    );
    assert!(!marks.contains(&"storm the capitol"), "{marks:?}");
    let detectors = b.text("#evidence .detectors").await;
    assert!(detectors.contains("threat.explicit"), "{detectors}");
    assert!(!detectors.contains("incitement"), "{detectors}");
    // Times carry their time zone.
    let zone = b
        .js("return new Date().toLocaleString(undefined, { timeZoneName: 'short' }).split(' ').pop()")
        .await;
    let opened = b.text(".card .facts time").await;
    assert!(
        opened.ends_with(zone.as_str().unwrap()),
        "{opened} / {zone}"
    );

    // Four near-identical findings are one item that says so.
    b.open_case(&app, &incitement).await;
    let groups = b
        .js("return Array.from(document.querySelectorAll('#evidence .evidence-item[data-count]')).map((e) => e.dataset.count)")
        .await;
    assert_eq!(groups, json!(["4"]));
    b.wait_for_text("#evidence", "4 near-identical findings")
        .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#evidence .evidence-item').length")
            .await,
        json!(evidence - 3),
        "the four repeats are one item"
    );

    // A delivered webhook shows no error.
    b.wait_for_text("#deliveries", "delivered").await;
    let errors = b
        .js("return Array.from(document.querySelectorAll('#deliveries td.last-error')).map((td) => td.textContent)")
        .await;
    assert!(
        errors.as_array().unwrap().iter().all(|e| e == "—"),
        "{errors}"
    );

    // Assign the case to a person.
    b.wait_for("#act-assign").await.click().await.unwrap();
    let owner = b.wait_for("#act-owner").await;
    owner.clear().await.unwrap();
    owner.send_keys("carl").await.unwrap();
    b.wait_for("#act-reason")
        .await
        .send_keys("carl knows this tenant")
        .await
        .unwrap();
    b.wait_for("form.actions button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("#action-result", "Assign recorded").await;
    b.wait_for_text(".card .facts", "carl").await;
    let (_, c) = app.get(&format!("/v1/cases/{incitement}")).await;
    assert_eq!(c["owner"], "carl");
    b.screenshot_tall("grouped-evidence", 2400).await;
    b.stop().await;
}

#[tokio::test]
async fn only_an_approver_who_took_no_part_decides_an_appeal_from_the_console() {
    if !enabled() {
        return;
    }
    let _one = SERIAL.lock().await;
    let app = seeded_app().await;
    let site = FakeSite::start(vec![violating(0)], Duration::ZERO).await;
    app.create_tenant("forum", "standard").await;
    let rita_reporter = app.token("reporter", "rita").await;
    let rita_approver = app.token("approver", "rita").await;
    let carol = app.token("approver", "carol").await;
    let forum = app.token("tenant:forum", "forum dashboard").await;
    let (status, report) = app
        .call_as(
            &rita_reporter,
            reqwest::Method::POST,
            "/v1/reports",
            Some(&json!({"tenant": "forum", "category": "violent-incitement",
                "urls": [format!("{}/p/0", site.base)], "description": "calls to storm the capitol"})),
        )
        .await;
    assert_eq!(status, 202, "{report}");
    let id = report["case"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            &format!("/v1/cases/{id}/actions"),
            &json!({"action": "send_notice", "reason": "report confirmed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call_as(
            &forum,
            reqwest::Method::POST,
            &format!("/v1/tenant/cases/{id}/appeal"),
            Some(&json!({"text": "the post quotes a film"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let b = Browser::start().await;
    b.sign_in(&app, &rita_approver).await;
    b.open_case(&app, &id).await;
    b.wait_for_text("#plan", "waiting for an approver who took no part")
        .await;
    let deny = b.wait_for("#act-deny_appeal").await;
    assert!(!deny.is_enabled().await.unwrap());
    let why = b.text("#act-deny_appeal-help").await;
    assert!(why.contains("You took part in this case"), "{why}");
    b.sign_out().await;

    b.sign_in(&app, &carol).await;
    b.open_case(&app, &id).await;
    b.wait_for("#act-deny_appeal").await.click().await.unwrap();
    b.wait_for("#act-reason")
        .await
        .send_keys("a call to storm the capitol, not a film")
        .await
        .unwrap();
    b.wait_for("form.actions button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text(
        "#action-result",
        "Deny appeal recorded. The case is now noticed",
    )
    .await;
    b.wait_for_text("#plan", "denied by carol").await;
    let (_, c) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(c["appeals"][0]["outcome"], "denied");
    assert_eq!(c["appeals"][0]["decided_by"], "carol");
    b.screenshot_tall("appeal-denied", 2400).await;
    b.stop().await;
}

impl Browser {
    /// Presses one key on whatever has the focus, as a reviewer would.
    async fn press(&self, key: char) {
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await.unwrap();
    }
}

#[tokio::test]
async fn a_reviewer_shows_the_text_and_labels_an_item_with_one_key_each() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let app = seeded_app().await;
    app.create_tenant("parlor", "standard").await;
    let items =
        json!({"items": [{"text": violating(0)}, {"text": "post: a lovely picnic at the lake"}]});
    let (status, body) = app.post("/v1/tenants/parlor/content", &items).await;
    assert_eq!(status, 200, "{body}");
    let ann = app.token("reviewer", "ann").await;
    let (_, next) = app
        .call_as(
            &ann,
            reqwest::Method::GET,
            "/v1/review/next?tenant=parlor",
            None,
        )
        .await;
    let first = next["item"]["item"].as_str().unwrap().to_string();

    let b = Browser::start().await;
    b.client
        .goto(&format!("{}/console/", app.base))
        .await
        .unwrap();
    b.wait_for("#token").await.send_keys(&ann).await.unwrap();
    b.wait_for("form.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("#r-pick").await;
    assert_eq!(
        b.js("return [...document.querySelectorAll('#nav li')].filter((li) => !li.hidden).map((li) => li.textContent)").await,
        json!(["Review"]),
        "a reviewer is offered the review screen only"
    );
    b.client
        .goto(&format!("{}/console/#/review?tenant=parlor", app.base))
        .await
        .unwrap();
    b.wait_for("#review-item .evidence-text").await;
    let blurred =
        "return document.querySelector('#review-item .evidence-text').classList.contains('blurred')";
    assert_eq!(
        b.js(blurred).await,
        json!(true),
        "text is blurred until shown"
    );
    b.js("document.activeElement && document.activeElement.blur()")
        .await;
    b.press('s').await;
    assert_eq!(b.js(blurred).await, json!(false), "`s` shows the text");
    b.press('v').await;
    let labels = eventually("the label stored", || async {
        let (_, body) = app.get("/v1/review/labels?tenant=parlor").await;
        let labels = body["labels"].as_array().cloned().unwrap_or_default();
        (!labels.is_empty()).then_some(labels)
    })
    .await;
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0]["item"], first);
    assert_eq!(labels[0]["reviewer"], "ann");
    assert_eq!(labels[0]["answer"], "violates");
    assert_eq!(labels[0]["category"], "violent-incitement");
    // The screen moves on to the next item and shows the agreement table.
    b.wait_for_text("#agreement", "ann").await;
    let shown = b.text("#review-item h2").await;
    assert!(shown.starts_with("Item in band"), "{shown}");
    assert_ne!(
        b.js("return document.querySelector('#review-item').textContent")
            .await,
        json!(null)
    );
    b.screenshot("review").await;
    b.stop().await;
}

#[tokio::test]
async fn an_operator_marks_a_wrong_flag_from_the_evidence_as_a_feedback_label() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let app = seeded_app().await;
    let case = case_from_content(&app, "forum", vec![violating(0)]).await;
    let id = case["id"].as_str().unwrap().to_string();
    let olga = app.token("operator", "olga").await;
    let b = Browser::start().await;
    b.sign_in(&app, &olga).await;
    b.open_case(&app, &id).await;
    let button = b.wait_for("#evidence button.feedback").await;
    assert_eq!(button.text().await.unwrap(), "Wrong flag");
    button.click().await.unwrap();
    b.wait_for_text("#evidence", "Recorded: not a violation")
        .await;
    let (_, body) = app.get("/v1/review/labels?tenant=forum").await;
    let labels = body["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 1, "{body}");
    assert_eq!(labels[0]["origin"], "feedback");
    assert_eq!(labels[0]["answer"], "does_not");
    assert_eq!(labels[0]["reviewer"], "olga");
    b.stop().await;
}
