//! Serves the console's static files (`crate::console`) under `/console/`.
//! Public: the files hold no data; every call they make needs a token.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::ApiError;
use crate::console;

/// Registers `/console` (a redirect) and `/console/{file}`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/console").route(web::get().to(redirect_to_console)))
        .service(web::resource("/console/").route(web::get().to(get_console_asset)))
        .service(web::resource("/console/{file}").route(web::get().to(get_console_asset)));
}

async fn redirect_to_console() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn get_console_asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("file").unwrap_or_default();
    let asset = console::asset(name).ok_or(ApiError::NotFound("console file"))?;
    let etag = console::etag(asset);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    for (k, v) in console::SECURITY_HEADERS {
        res.insert_header((*k, *v));
    }
    res.insert_header((header::ETAG, etag));
    if fresh {
        return Ok(res.finish());
    }
    Ok(res
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .body(asset.body))
}
