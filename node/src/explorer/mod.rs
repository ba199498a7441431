//! # The block explorer page
//!
//! A single-page app — plain HTML, CSS and one vanilla-JS module, no build step, no CDN, so it works
//! offline and installs with the binary — embedded with `include_str!` and served at `/`, with its
//! assets under `/explorer/`. It reads the public `/v1` API and the `/v1/events` stream like any
//! other client: the page has no private hooks into the node, so everything it shows a script can
//! get too, and the API's rate limits and bounds protect the node from the page as well.
//!
//! Routing inside the app uses hash URLs (`#/block/12`, `#/tx/<hash>`, `#/account/<addr>`), so deep
//! links work without the server knowing any of them: it only ever serves `/`.
//!
//! Caching: the HTML is `no-cache` (revalidated by its ETag on every load, so a new binary's page
//! shows at once, and an unchanged one costs a 304). It links each asset as `?v=<content hash>`; a
//! request carrying the current version may be cached for a year as `immutable`. Any other request
//! for an asset (no version, or a stale one) is still answered, but `no-cache`, so a browser can
//! never pin an old script under a new page.
//!
//! Verified reads: the account and transaction pages check what the node answers against the
//! chain's genesis in the browser (`assets/verify.js`, a port of `ledger_core::light`), with the
//! genesis hash given in the page address or pinned on the first visit. Its cryptography comes from
//! npm packages vendored at pinned versions under `assets/vendor/` (see its README), served under
//! `/explorer/vendor/` and checked against the SHA-256 recorded in [`VENDOR`] by a unit test.
//!
//! Security: the HTML is served with a strict Content-Security-Policy (same-origin script, style and
//! connections only, no inline script, no framing). It complements, not replaces, the rule the
//! script itself follows: it never parses data as HTML (no `innerHTML`), it builds DOM nodes, so
//! a hostile memo or peer address renders as text. A unit test below keeps that rule enforced.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");
const VERIFY_JS: &str = include_str!("assets/verify.js");

/// A file of an npm package, vendored unchanged: its path under `assets/vendor/` (and
/// `/explorer/vendor/`), its text, and the SHA-256 of the file in the package's registry tarball.
struct VendorFile {
    path: &'static str,
    text: &'static str,
    /// Read by the unit test that pins the files, not at run time.
    #[cfg_attr(not(test), allow(dead_code))]
    sha256: &'static str,
}

macro_rules! vendor {
    ($path:literal, $sha256:literal) => {
        VendorFile {
            path: $path,
            text: include_str!(concat!("assets/vendor/", $path)),
            sha256: $sha256,
        }
    };
}

/// `@noble/ed25519@3.2.0`, `@noble/hashes@2.4.0` (SHA-2 only) and `@scure/base@2.4.0`, with their
/// licenses. Pinned: a unit test recomputes every hash.
const VENDOR: &[VendorFile] = &[
    vendor!(
        "noble-ed25519-3.2.0/index.js",
        "a4f631d1876b5d9e43a86cd71194ca27b5e1451edf4ba4db9a418f40a475569a"
    ),
    vendor!(
        "noble-ed25519-3.2.0/LICENSE",
        "394c2e6e5552e5dba202bee6390b9d6aa2754d657f5b9869e83b3d265a315501"
    ),
    vendor!(
        "noble-hashes-2.4.0/sha2.js",
        "471746bba6ec4c6238ca41358d1d3b40b6ff31cf3363f0b4d550c649c1a8e83b"
    ),
    vendor!(
        "noble-hashes-2.4.0/_md.js",
        "60cf3010fda89e3e4d3f0e7ff1ce249e9c467f34b4fd41b6fd6101d9f69be763"
    ),
    vendor!(
        "noble-hashes-2.4.0/_u64.js",
        "b09da8c07fe8187c07649494cdb7cd0bcf13df90b506a9473d19e4d5f8c2e102"
    ),
    vendor!(
        "noble-hashes-2.4.0/utils.js",
        "037ad49adb78168b6b699598fd33f85f7877456b1d28b4d032e2a1a16807947c"
    ),
    vendor!(
        "noble-hashes-2.4.0/LICENSE",
        "4f221aee6e072336700c408c68ab3b96a3fc09f6aebe6f48f1bd99e5ef13faec"
    ),
    vendor!(
        "scure-base-2.4.0/index.js",
        "4bd334e6606db7216143c7bffbc5c00716d2c137744a0c48b51495fa6d05444a"
    ),
    vendor!(
        "scure-base-2.4.0/LICENSE",
        "3239e134eb6e6d64538ca76498c7fcb08a395249dd9d4af9927bf6d0169ee429"
    ),
];

/// One year: the longest lifetime caches honour; versioned URLs never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Store, but revalidate (ETag) before every use.
const REVALIDATE: &str = "no-cache";

/// The page may load its own script, style and icon, and talk to its own origin (API + SSE).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// An embedded file with what it is served with.
struct Asset {
    body: Bytes,
    content_type: &'static str,
    /// First 16 hex digits of the SHA-256 of the body: the `?v=` of its URL.
    version: String,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: Bytes, content_type: &'static str) -> Asset {
        let version = ledger_core::Hash::digest(&body).to_hex()[..16].to_owned();
        // Hex digits in quotes are always a valid header value; the fallback is unreachable.
        let etag = HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or(HeaderValue::from_static("\"0\""));
        Asset {
            body,
            content_type,
            version,
            etag,
        }
    }
}

struct Assets {
    index: Asset,
    app: Asset,
    verify: Asset,
    style: Asset,
    favicon: Asset,
    /// By path under `/explorer/vendor/`.
    vendor: HashMap<&'static str, Asset>,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Built once: hashing ~250 KB at first request is cheaper than a build script.
static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let verify = Asset::new(Bytes::from_static(VERIFY_JS.as_bytes()), JS);
    // app.js imports verify.js by its versioned URL, so a cached app.js never runs a stale check.
    let app = Asset::new(
        Bytes::from(APP_JS.replace("__VERIFY_VERSION__", &verify.version)),
        JS,
    );
    let vendor = VENDOR
        .iter()
        .map(|f| {
            let kind = if f.path.ends_with(".js") {
                JS
            } else {
                "text/plain; charset=utf-8"
            };
            (
                f.path,
                Asset::new(Bytes::from_static(f.text.as_bytes()), kind),
            )
        })
        .collect();
    let style = Asset::new(
        Bytes::from_static(STYLE_CSS.as_bytes()),
        "text/css; charset=utf-8",
    );
    let favicon = Asset::new(Bytes::from_static(FAVICON_SVG.as_bytes()), "image/svg+xml");
    let html = INDEX_HTML
        .replace("__APP_VERSION__", &app.version)
        .replace("__STYLE_VERSION__", &style.version)
        .replace("__FAVICON_VERSION__", &favicon.version);
    let index = Asset::new(Bytes::from(html), "text/html; charset=utf-8");
    Assets {
        index,
        app,
        verify,
        style,
        favicon,
        vendor,
    }
});

/// The explorer's routes: `/` (the page) and `/explorer/...` (its assets). No fallback, so it
/// merges into the API router, whose fallback answers every other path.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/explorer", get(home))
        .route("/explorer/", get(home))
        .route("/explorer/app.js", get(app_js))
        .route("/explorer/verify.js", get(verify_js))
        .route("/explorer/vendor/{package}/{file}", get(vendor_file))
        .route("/explorer/style.css", get(style_css))
        .route("/explorer/favicon.svg", get(favicon))
}

async fn index(headers: HeaderMap) -> Response {
    let mut response = serve(&ASSETS.index, REVALIDATE, &headers);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn home() -> Redirect {
    Redirect::permanent("/")
}

async fn app_js(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    versioned(&ASSETS.app, q.as_deref(), &headers)
}

async fn verify_js(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    versioned(&ASSETS.verify, q.as_deref(), &headers)
}

/// A vendored file, by its path; anything not in [`VENDOR`] is not found.
async fn vendor_file(
    Path((package, file)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    match ASSETS.vendor.get(format!("{package}/{file}").as_str()) {
        Some(asset) => versioned(asset, q.as_deref(), &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn style_css(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    versioned(&ASSETS.style, q.as_deref(), &headers)
}

async fn favicon(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    versioned(&ASSETS.favicon, q.as_deref(), &headers)
}

/// Long-lived caching only for the URL of the current content (see the module docs).
fn versioned(asset: &'static Asset, query: Option<&str>, headers: &HeaderMap) -> Response {
    let current = query
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.strip_prefix("v=") == Some(asset.version.as_str()));
    serve(asset, if current { IMMUTABLE } else { REVALIDATE }, headers)
}

fn serve(asset: &'static Asset, cache_control: &'static str, req: &HeaderMap) -> Response {
    let base = [
        (header::ETAG, asset.etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if etag_matches(req, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, base).into_response();
    }
    (
        base,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body.clone(),
    )
        .into_response()
}

/// `If-None-Match` is a list of (possibly weak) entity tags, or `*`.
fn etag_matches(req: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    req.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let req = req.body(Body::empty()).expect("request");
        let resp = router().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn header(h: &HeaderMap, name: header::HeaderName) -> &str {
        h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test]
    async fn page_is_html_revalidated_and_locked_down() {
        let (status, h, body) = get("/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header(&h, header::CACHE_CONTROL), "no-cache");
        assert!(header(&h, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        assert_eq!(header(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(
            !body.contains("_VERSION__"),
            "a version placeholder was left in the page"
        );
        assert!(body.contains(&format!("/explorer/app.js?v={}", ASSETS.app.version)));
        assert!(body.contains(&format!("/explorer/style.css?v={}", ASSETS.style.version)));
    }

    #[tokio::test]
    async fn every_asset_the_page_links_is_served_immutable_with_its_type() {
        let (_, _, page) = get("/", None).await;
        for (path, asset) in [
            ("/explorer/app.js", &ASSETS.app),
            ("/explorer/style.css", &ASSETS.style),
            ("/explorer/favicon.svg", &ASSETS.favicon),
        ] {
            let url = format!("{path}?v={}", asset.version);
            assert!(page.contains(&url), "page does not link {url}");
            let (status, h, body) = get(&url, None).await;
            assert_eq!(status, StatusCode::OK, "{url}");
            assert_eq!(
                header(&h, header::CONTENT_TYPE),
                asset.content_type,
                "{url}"
            );
            assert_eq!(header(&h, header::CACHE_CONTROL), IMMUTABLE, "{url}");
            assert_eq!(body.len(), asset.body.len(), "{url}");
            // Unversioned or stale: served, but never cached without revalidation.
            for stale in [path.to_string(), format!("{path}?v=0000000000000000")] {
                let (status, h, _) = get(&stale, None).await;
                assert_eq!(
                    (status, header(&h, header::CACHE_CONTROL)),
                    (StatusCode::OK, "no-cache"),
                    "{stale}"
                );
            }
        }
    }

    #[tokio::test]
    async fn matching_etag_is_answered_not_modified() {
        let (_, h, _) = get("/", None).await;
        let tag = header(&h, header::ETAG).to_owned();
        let (status, h, body) = get("/", Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&h, header::ETAG), tag);
        let (status, _, _) = get("/", Some(&format!("\"other\", W/{tag}"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "weak tag in a list");
        let (status, _, _) = get("/", Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn explorer_path_redirects_to_the_page() {
        let (status, h, _) = get("/explorer", None).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&h, header::LOCATION), "/");
    }

    /// The page renders node data (memos, peer addresses, error messages): it must never parse
    /// anything as HTML. The CSP would stop injected script, not injected markup. The vendored
    /// modules run in the page too, so the rule holds for them as well.
    #[test]
    fn script_never_parses_strings_as_html() {
        let scripts = [("app.js", APP_JS), ("verify.js", VERIFY_JS)]
            .into_iter()
            .chain(VENDOR.iter().map(|f| (f.path, f.text)));
        for (name, text) in scripts {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(banned), "{name} uses {banned}");
            }
        }
    }

    /// Works offline: nothing is fetched from another origin.
    #[test]
    fn assets_reference_no_other_origin() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("style.css", STYLE_CSS),
            ("verify.js", VERIFY_JS),
        ] {
            assert!(!text.contains("://"), "{name} references another origin");
        }
        let without_svg_ns = APP_JS.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !without_svg_ns.contains("://"),
            "app.js references another origin"
        );
    }

    /// The vendored files are the pinned npm versions, byte for byte, and nothing else is in the
    /// folder unlisted (a file dropped in beside them would not be checked).
    #[test]
    fn vendored_files_are_the_pinned_versions() {
        for f in VENDOR {
            assert_eq!(
                ledger_core::Hash::digest(f.text.as_bytes()).to_hex(),
                f.sha256,
                "{} is not the pinned file (see assets/vendor/README.md to update it)",
                f.path
            );
        }
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/explorer/assets/vendor");
        let mut on_disk = Vec::new();
        for package in std::fs::read_dir(&root).expect("vendor folder") {
            let package = package.expect("entry").path();
            if !package.is_dir() {
                continue;
            }
            let name = package.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(
                VENDOR.iter().any(|f| f.path == format!("{name}/LICENSE")),
                "{name} is vendored without its LICENSE"
            );
            for file in std::fs::read_dir(&package).expect("package folder") {
                let file = file.expect("entry").path();
                let file = file.file_name().and_then(|n| n.to_str()).expect("name");
                on_disk.push(format!("{name}/{file}"));
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = VENDOR.iter().map(|f| f.path.to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "assets/vendor/ and VENDOR differ");
    }

    /// The vendored modules import only each other (relative paths inside their own package) and
    /// load nothing at run time; verify.js asks only for listed files.
    #[test]
    fn vendored_modules_load_nothing_from_elsewhere() {
        for f in VENDOR.iter().filter(|f| f.path.ends_with(".js")) {
            for (i, _) in f.text.match_indices(" from \"") {
                let target = &f.text[i + 7..];
                assert!(
                    target.starts_with("./") && !target[2..].starts_with('.'),
                    "{} imports something outside its package: {}",
                    f.path,
                    &target[..target.find('"').unwrap_or(target.len())]
                );
            }
            for banned in [
                "import(",
                "fetch(",
                "XMLHttpRequest",
                "WebSocket",
                "importScripts",
            ] {
                assert!(!f.text.contains(banned), "{} uses {banned}", f.path);
            }
        }
        let mut asked = 0;
        for (i, _) in VERIFY_JS.match_indices("'./vendor/") {
            let rest = &VERIFY_JS[i + 10..];
            let path = &rest[..rest.find('\'').expect("closing quote")];
            assert!(
                VENDOR.iter().any(|f| f.path == path),
                "verify.js imports {path}, which is not vendored"
            );
            asked += 1;
        }
        assert_eq!(asked, 3, "verify.js imports sha2, ed25519 and base");
    }

    #[tokio::test]
    async fn verify_js_is_imported_by_its_version_and_vendored_files_are_served() {
        let (status, _, app) =
            get(&format!("/explorer/app.js?v={}", ASSETS.app.version), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !app.contains("__VERIFY_VERSION__"),
            "placeholder left in app.js"
        );
        let url = format!("./verify.js?v={}", ASSETS.verify.version);
        assert!(app.contains(&url), "app.js does not import {url}");
        let (status, h, body) = get(&url[1..].replace("/verify", "/explorer/verify"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, header::CACHE_CONTROL), IMMUTABLE);
        assert_eq!(header(&h, header::CONTENT_TYPE), JS);
        assert_eq!(body, VERIFY_JS);
        for f in VENDOR {
            let (status, h, body) = get(&format!("/explorer/vendor/{}", f.path), None).await;
            assert_eq!(status, StatusCode::OK, "{}", f.path);
            let want = if f.path.ends_with(".js") {
                JS
            } else {
                "text/plain; charset=utf-8"
            };
            assert_eq!(header(&h, header::CONTENT_TYPE), want, "{}", f.path);
            assert_eq!(header(&h, header::CACHE_CONTROL), REVALIDATE, "{}", f.path);
            assert_eq!(body, f.text, "{}", f.path);
        }
        for missing in [
            "/explorer/vendor/noble-ed25519-3.2.0/other.js",
            "/explorer/vendor/noble-ed25519-9.9.9/index.js",
        ] {
            let (status, _, _) = get(missing, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        }
    }
}
