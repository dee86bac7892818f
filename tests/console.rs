//! The console is served by aupd itself: its files come out of the binary
//! with the right content types and a strict content security policy, need
//! no token, and never reach for another origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::spawn_app;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn fetch(base: &str, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_console_file_is_served_without_a_token_with_its_type_and_a_strict_csp() {
    let app = spawn_app().await;
    for (path, ty) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/api.js", "text/javascript; charset=utf-8"),
        ("/console/dom.js", "text/javascript; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let r = fetch(&app.base, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), ty, "{path}");
        assert_eq!(header(&r, "content-security-policy"), CSP, "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
        assert!(header(&r, "etag").starts_with('"'), "{path}");
    }
}

#[tokio::test]
async fn the_bare_console_path_redirects_to_the_index() {
    let app = spawn_app().await;
    let r = fetch(&app.base, "/console").await;
    assert_eq!(r.status(), 308);
    assert_eq!(header(&r, "location"), "/console/");
}

#[tokio::test]
async fn an_unchanged_file_answers_not_modified() {
    let app = spawn_app().await;
    let first = fetch(&app.base, "/console/app.js").await;
    let etag = header(&first, "etag").to_string();
    let again = reqwest::Client::new()
        .get(format!("{}/console/app.js", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "content-security-policy"), CSP);
}

#[tokio::test]
async fn an_unknown_console_file_is_not_found_and_paths_cannot_escape() {
    let app = spawn_app().await;
    for path in [
        "/console/nope.js",
        "/console/..%2FCargo.toml",
        "/console/x/app.js",
    ] {
        let r = fetch(&app.base, path).await;
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = fetch(&app.base, "/console/nope.js").await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "not_found", "message": "console file not found"})
    );
}

#[tokio::test]
async fn no_console_file_refers_to_another_origin_or_renders_html_from_strings() {
    for asset in aupd::console::ASSETS {
        let text = std::str::from_utf8(asset.body).unwrap();
        for line in text.lines() {
            // The SVG namespace is a name, not a fetch.
            let cleaned = line.replace("http://www.w3.org/2000/svg", "");
            for scheme in ["http://", "https://", "//cdn", "ws://", "wss://"] {
                assert!(
                    !cleaned.contains(scheme),
                    "{} refers to another origin: {line}",
                    asset.name
                );
            }
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!line.contains(sink), "{} uses {sink}: {line}", asset.name);
            }
            assert!(
                !line.contains("style=") && !line.contains("<script>"),
                "{} has inline style or script, which the CSP refuses: {line}",
                asset.name
            );
        }
    }
}

#[tokio::test]
async fn the_console_learns_who_is_signed_in_from_the_token_itself() {
    let app = spawn_app().await;
    let alice = app.token("approver", "alice").await;
    let (status, body) = app
        .call_as(&alice, reqwest::Method::GET, "/v1/tokens/self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "alice");
    assert_eq!(body["role"], "approver");
    let (status, body) = app
        .call_as("not-a-token", reqwest::Method::GET, "/v1/tokens/self", None)
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthenticated");
}
