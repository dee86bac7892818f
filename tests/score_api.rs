//! `POST /v1/score`, policy reload and health over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{spawn_app_with, Options, TestApp, ADMIN_TOKEN};

/// Starts aupd with a private copy of the shipped policy, which a test may edit.
async fn spawn_app() -> PolicyApp {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policies");
    common::copy_dir(&common::shipped_policies(), &policy_dir);
    let p = policy_dir.clone();
    let app = spawn_app_with(Options {
        configure: Box::new(move |s| {
            s.policy.dir = p;
            s.server.max_body_bytes = 64 * 1024;
        }),
        ..Options::default()
    })
    .await;
    PolicyApp {
        client: app.anonymous(),
        policy_dir,
        app,
        _dir: dir,
    }
}

struct PolicyApp {
    client: reqwest::Client,
    policy_dir: std::path::PathBuf,
    app: TestApp,
    _dir: tempfile::TempDir,
}

impl PolicyApp {
    /// The full URL of `path` on this app.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app.post_json(path, body).await
    }
}
use serde_json::{json, Value};

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["policy_version"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn score_flags_incitement_with_evidence_from_the_original_text() {
    let app = spawn_app().await;
    let text = "Everyone: st0rm thе capitol at noon!";
    let r = app.post_json("/v1/score", &json!({ "text": text })).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let flagged: Vec<&str> = v["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap())
        .collect();
    assert!(flagged.contains(&"violent-incitement"), "{v}");
    assert_eq!(v["policy_version"].as_str().unwrap().len(), 64);
    let ev = v["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detector"] == "incitement.calls-to-violence")
        .expect("phrase evidence");
    let (s, e) = (
        ev["start"].as_u64().unwrap() as usize,
        ev["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[s..e], "st0rm thе capitol");
    assert_eq!(ev["text"], "st0rm thе capitol");
}

#[tokio::test]
async fn score_many_texts_keeps_their_order() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/v1/score",
            &json!({ "texts": ["nice weather today", "i will kill you"] }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts[0]["flagged"].as_array().unwrap().is_empty());
    assert_eq!(verdicts[1]["flagged"][0]["category"], "violent-threat");
}

#[tokio::test]
async fn score_without_a_token_is_401() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/v1/score"))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "unauthenticated", "message": "a valid bearer token is required"})
    );
}

#[tokio::test]
async fn score_with_a_wrong_token_is_401() {
    let app = spawn_app().await;
    for header in [
        "Bearer not-the-token-at-all-xx",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        &format!("Bearer {ADMIN_TOKEN}x"),
    ] {
        let r = app
            .client
            .post(app.url("/v1/score"))
            .header("authorization", header)
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
    }
}

#[tokio::test]
async fn malformed_json_is_a_clear_400() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/v1/score"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    assert!(body["message"].as_str().unwrap().contains("EOF"), "{body}");
}

#[tokio::test]
async fn unknown_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let r = app
        .post_json("/v1/score", &json!({"text": "hi", "lang": "en"}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_body");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `lang`"),
        "{body}"
    );
}

#[tokio::test]
async fn both_text_and_texts_is_refused() {
    let app = spawn_app().await;
    let r = app
        .post_json("/v1/score", &json!({"text": "a", "texts": ["b"]}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "invalid_body", "message": "give exactly one of `text` (a string) or `texts` (a list of strings)"})
    );
}

#[tokio::test]
async fn oversize_body_is_413() {
    let app = spawn_app().await;
    let big = "a".repeat(70 * 1024);
    let r = app.post_json("/v1/score", &json!({"text": big})).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/v1/score"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body("{\"text\": \"hi\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn reload_swaps_in_a_valid_policy() {
    let app = spawn_app().await;
    let before: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = app.policy_dir.join("default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "\"storm the capitol\",",
            "\"storm the capitol\", \"overrun the town hall\",",
        ),
    )
    .unwrap();

    let r = app.post_json("/v1/policy/reload", &json!({})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["previous_version"], before["policy_version"]);
    assert_ne!(body["version"], before["policy_version"]);

    let v: Value = app
        .post_json("/v1/score", &json!({"text": "overrun the town hall"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["flagged"][0]["category"], "violent-incitement");
    assert_eq!(v["policy_version"], body["version"]);
}

#[tokio::test]
async fn reload_refuses_an_invalid_policy_and_keeps_the_old_one() {
    let app = spawn_app().await;
    let before: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = app.policy_dir.join("default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("flag_threshold = 0.5", "flag_threshold = 1.5", 1),
    )
    .unwrap();

    let r = app.post_json("/v1/policy/reload", &json!({})).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_policy");
    let detail = &body["details"][0];
    assert!(detail["file"].as_str().unwrap().ends_with("default.toml"));
    assert!(detail["line"].as_u64().unwrap() > 1);
    assert_eq!(detail["key"], "category[0].flag_threshold");
    assert_eq!(detail["message"], "must be between 0 and 1, got 1.5");

    let after: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["policy_version"], before["policy_version"]);
    let v: Value = app
        .post_json("/v1/score", &json!({"text": "storm the capitol"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["policy_version"], before["policy_version"]);
}

async fn policy_version(app: &PolicyApp) -> Value {
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["policy_version"].clone()
}

#[tokio::test]
async fn reload_swaps_in_edited_ladders_with_the_categories_as_one_policy() {
    let app = spawn_app().await;
    let before = policy_version(&app).await;
    let path = app.policy_dir.join("escalation").join("ladders.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("cure_window = \"1h\"", "cure_window = \"2h\"", 1),
    )
    .unwrap();

    let r = app.post_json("/v1/policy/reload", &json!({})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["previous_version"], before);
    assert_ne!(body["version"], before);
    assert_eq!(policy_version(&app).await, body["version"]);
    assert_eq!(
        app.app.cases.ladders().critical.cure_window,
        jiff::SignedDuration::from_hours(2)
    );
}

#[tokio::test]
async fn reload_refuses_broken_ladders_with_file_and_line_and_keeps_the_old_policy() {
    let app = spawn_app().await;
    let before = policy_version(&app).await;
    let path = app.policy_dir.join("escalation").join("ladders.toml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    let not_a_duration = |d: &str| {
        format!(
            "\"{d}\" is not a duration: write a positive whole number and a unit, like \"90s\", \"30m\", \"24h\" or \"7d\""
        )
    };
    let medium_start = shipped.find("[medium]").unwrap();
    let medium_end = shipped.find("[low]").unwrap();
    let without_medium = format!("{}{}", &shipped[..medium_start], &shipped[medium_end..]);
    let cases = [
        (
            shipped.replacen("cure_window = \"1h\"", "cure_window = \"0s\"", 1),
            Some("cure_window = \"0s\""),
            "critical.cure_window",
            not_a_duration("0s"),
        ),
        (
            shipped.replacen("cure_window = \"24h\"", "cure_window = \"24\"", 1),
            Some("cure_window = \"24\""),
            "high.cure_window",
            not_a_duration("24"),
        ),
        (
            without_medium,
            None,
            "medium",
            "missing table [medium]: the file needs one table per severity (critical, high, medium, low)"
                .to_string(),
        ),
    ];
    for (text, at, key, message) in cases {
        std::fs::write(&path, &text).unwrap();
        let r = app.post_json("/v1/policy/reload", &json!({})).await;
        assert_eq!(r.status(), 422, "{key}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_policy", "{body}");
        assert_eq!(body["details"].as_array().unwrap().len(), 1, "{body}");
        let detail = &body["details"][0];
        assert_eq!(detail["file"], path.display().to_string());
        let line = detail["line"].as_u64().unwrap() as usize;
        match at {
            Some(at) => assert_eq!(line, text.lines().position(|l| l == at).unwrap() + 1),
            None => assert!(line >= 1, "{body}"),
        }
        assert_eq!(detail["key"], key);
        assert_eq!(detail["message"], message);

        assert_eq!(policy_version(&app).await, before, "{key}");
        assert_eq!(
            app.app.cases.ladders().critical.cure_window,
            jiff::SignedDuration::from_hours(1)
        );
    }
}
