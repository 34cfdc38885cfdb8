//! How the site's files reach a browser: content-hashed names (cargo-leptos
//! `hash-files`) are cached for a year as immutable, and whatever is not
//! precompressed (a plain `cargo leptos build`, the pages themselves) is
//! compressed on the fly when the browser accepts it.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::Response,
    Router,
};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Cache-Control of a file whose name changes with its content.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// Adds compression, and, when the site's files are content-hashed
/// (`hashed`), the immutable cache header under `/<pkg_dir>/`.
pub fn layer<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    hashed: bool,
    pkg_dir: &str,
) -> Router<S> {
    // The fastest level: a development build's wasm is tens of megabytes,
    // and a page must not wait seconds for its compression (release
    // builds are precompressed at the best level by `--precompress`).
    let router = router.layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
    if !hashed {
        return router;
    }
    let prefix = format!("/{}/", pkg_dir.trim_matches('/'));
    router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let prefix = prefix.clone();
        async move {
            let hashed_file = request.uri().path().starts_with(&prefix);
            let mut response: Response = next.run(request).await;
            if hashed_file && response.status().is_success() {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, IMMUTABLE);
            }
            response
        }
    }))
}
