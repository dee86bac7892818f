//! The OpenAPI document describes every route the server registers, and is
//! served with its reference page.

mod common;

use std::collections::BTreeSet;

use common::spawn_app;

fn documented() -> BTreeSet<(String, String)> {
    let doc = aupd::api::openapi::document();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_registered_route_is_described_in_the_openapi_document() {
    let documented = documented();
    let registered: BTreeSet<(String, String)> = aupd::api::routes::all()
        .list()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<String> = registered
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes registered in src/api/routes.rs but not described (add #[utoipa::path] to the \
         handler and list it in paths(...) in src/api/openapi.rs): {missing:?}"
    );
    let stale: Vec<String> = documented
        .difference(&registered)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        stale.is_empty(),
        "described in the OpenAPI document but not registered: {stale:?}"
    );
}

#[test]
fn routes_are_registered_only_through_the_route_list() {
    // A route added with `web::resource` directly would escape the
    // comparison above; only the console's static files are registered so.
    let mut stray = Vec::new();
    for entry in std::fs::read_dir("src/api").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name == "routes.rs" || name == "console.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("web::resource(") || text.contains("web::scope(") {
            stray.push(name);
        }
    }
    assert!(
        stray.is_empty(),
        "register routes through src/api/routes.rs (Endpoints), not web::resource: {stray:?}"
    );
}

#[test]
fn every_operation_names_its_roles_and_error_body() {
    let doc = aupd::api::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let roles = op["x-roles"].as_array().unwrap();
            if path.starts_with("/v1/") {
                assert!(!roles.is_empty(), "{method} {path} names no role");
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} has no 401"
                );
            }
            assert_eq!(
                op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorResponse",
                "{method} {path}"
            );
        }
    }
    let tenant_cases = &doc["paths"]["/v1/tenant/cases"]["get"];
    assert_eq!(tenant_cases["x-roles"], serde_json::json!(["tenant"]));
    assert_eq!(
        tenant_cases["security"],
        serde_json::json!([{"bearer": ["tenant"]}])
    );
}

#[actix_web::test]
async fn the_document_and_its_reference_page_are_served_without_a_token() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();

    let res = anonymous
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc, aupd::api::openapi::document());
    assert!(doc["paths"]["/v1/cases/{id}/actions"]["post"].is_object());

    let res = anonymous
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = res.text().await.unwrap();
    assert!(page.contains("fetch(\"/openapi.json\")"));
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
}

/// Whether a schema (after following one `$ref`) says nothing of its shape.
fn free_form(doc: &serde_json::Value, schema: &serde_json::Value) -> bool {
    let schema = match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    };
    let shaped = [
        "properties",
        "items",
        "oneOf",
        "anyOf",
        "allOf",
        "enum",
        "$ref",
    ]
    .iter()
    .any(|k| schema.get(k).is_some());
    let typed_scalar = matches!(
        schema["type"].as_str(),
        Some("string" | "integer" | "number" | "boolean" | "array")
    );
    !(shaped || typed_scalar)
}

#[test]
fn every_json_reply_and_request_body_has_a_described_shape() {
    // Replies that are not JSON records (the document itself, metrics, CSV
    // or HTML) are the only ones allowed to go without a shape.
    const ALLOWED: &[&str] = &["GET /openapi.json"];
    let doc = aupd::api::openapi::document();
    let mut shapeless = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let name = format!("{} {path}", method.to_uppercase());
            if ALLOWED.contains(&name.as_str()) {
                continue;
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let Some(schema) = response["content"]["application/json"].get("schema") else {
                    continue;
                };
                if status.starts_with('2') && free_form(&doc, schema) {
                    shapeless.push(format!("{name} → {status}"));
                }
            }
            if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
                if free_form(&doc, schema) {
                    shapeless.push(format!("{name} request body"));
                }
            }
        }
    }
    assert!(
        shapeless.is_empty(),
        "described as free-form objects (give them a named ToSchema type): {shapeless:?}"
    );
}

#[test]
fn every_error_status_names_the_codes_its_route_gives_and_each_code_exists() {
    let doc = aupd::api::openapi::document();
    // Every code the server can put in an error body is spelled in the
    // source; a listed code found nowhere there is a typo or a stale entry.
    let mut source = String::new();
    let mut dirs = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("openapi.rs") {
                source.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let listed = op["x-error-codes"].as_object().unwrap();
            assert!(
                listed.contains_key("404"),
                "{method} {path}: no codes for 404"
            );
            for (status, codes) in listed {
                let description = op["responses"][status]["description"].as_str().unwrap();
                for code in codes.as_array().unwrap() {
                    let code = code.as_str().unwrap();
                    assert!(
                        description.contains(&format!("`{code}`")),
                        "{method} {path} {status}: {description}"
                    );
                    assert!(
                        source.contains(&format!("\"{code}\"")),
                        "{method} {path} lists `{code}`, which the source never gives"
                    );
                }
            }
        }
    }
    let actions = &doc["paths"]["/v1/cases/{id}/actions"]["post"]["x-error-codes"];
    assert!(actions["409"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("no_labelled_evidence")));
    assert!(actions["403"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("separation_of_duties")));
}

#[test]
fn every_response_example_matches_its_schema() {
    let doc = aupd::api::openapi::document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let content = &response["content"]["application/json"];
                let Some(example) = content.get("example") else {
                    continue;
                };
                // The schema, with the document's components beside it so
                // that its `$ref`s resolve.
                let schema = serde_json::json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "allOf": [content["schema"]],
                    "components": doc["components"],
                });
                let validator = jsonschema::validator_for(&schema).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(example)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{method} {path} {status}: the example does not match the schema: {errors:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} examples checked");
}

/// A `oneOf` reply must match exactly one of its shapes, or a strict client
/// (and schemathesis) rejects a correct answer. The two statement formats
/// both hold a `statements` list, so a case with no statement yet is where
/// they could be confused.
#[test]
fn a_case_without_statements_matches_one_statement_format_only() {
    let doc = aupd::api::openapi::document();
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/CaseStatementsReply",
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    let aupd_format = serde_json::json!({
        "case_id": "01a24314-c87b-7001-9c19-3bd61034eb52",
        "statements": [],
    });
    let export_format = serde_json::json!({ "statements": [] });
    for reply in [&aupd_format, &export_format] {
        let errors: Vec<String> = validator
            .iter_errors(reply)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{reply} is refused: {errors:?}");
    }
}
