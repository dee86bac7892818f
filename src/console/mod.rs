//! The abuse team's web console: plain HTML, CSS and ES modules, built into
//! the binary so aupd serves it with no web server, CDN or build step. The
//! files here are exactly what a browser receives. The console calls only
//! the public API with the signed-in caller's bearer token, so it can do
//! nothing the API would refuse. `api::console` serves these assets over
//! HTTP; this module only knows the files and the headers they go out with.

/// One file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The name under `/console/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes, as in the repository.
    pub body: &'static [u8],
}

/// Every file of the console; `index.html` answers `/console/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("index.html"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("console.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dom.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("favicon.svg"),
    },
];

/// The console's content security policy: its own files only, no inline
/// script or style, no framing. Tenant content can never run here even if
/// a bug rendered it as HTML.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Assets are not content-addressed, so browsers revalidate every load
/// (cheap: the `ETag` answers 304) and an upgraded aupd is seen at once.
pub const CACHE_CONTROL: &str = "no-cache";

/// Headers every console response carries, beside its content type.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", CACHE_CONTROL),
];

/// The asset at `name` (`""` is the index page).
pub fn asset(name: &str) -> Option<&'static Asset> {
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}

/// A strong `ETag` for an asset: the start of its SHA-256.
pub fn etag(asset: &Asset) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(asset.body);
    format!("\"{}\"", hex::encode(&digest[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_answers_the_bare_path_and_unknown_names_are_absent() {
        assert_eq!(asset("").map(|a| a.name), Some("index.html"));
        assert!(asset("app.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("nope.js").is_none());
    }

    #[test]
    fn etags_differ_between_assets() {
        let a = etag(&ASSETS[0]);
        let b = etag(&ASSETS[1]);
        assert_ne!(a, b);
        assert!(a.starts_with('"') && a.ends_with('"'));
    }
}
