//! How the site's files reach a browser: compressed when they were not
//! precompressed, and cached as immutable when their names carry a hash.

mod support;

use battle_status::server::backplane::MemoryBus;
use leptos::config::LeptosOptions;
use support::{http_request, spawn_app, spawn_site};

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A site in a fresh folder with one built file, `pkg/<name>`.
fn site_with(name: &str, hash_files: bool) -> LeptosOptions {
    let root =
        std::env::temp_dir().join(format!("battle-site-{}-{hash_files}", std::process::id()));
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(
        root.join("pkg").join(name),
        "console.log('the page');".repeat(20),
    )
    .unwrap();
    LeptosOptions::builder()
        .output_name("battle-status")
        .site_root(root.to_string_lossy().into_owned())
        .hash_files(hash_files)
        .build()
}

#[tokio::test]
async fn what_was_not_precompressed_is_compressed_on_the_fly() {
    let server = spawn_app().await;
    for (path, encoding) in [
        ("/favicon.svg", "gzip"),
        ("/battle/duel-42", "br"),
        ("/", "gzip"),
    ] {
        let accept = [("accept-encoding", encoding)];
        let (status, response) = http_request(&server, "GET", path, &accept, "").await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&response, "content-encoding"),
            Some(encoding),
            "{path}"
        );
    }
    let (_, plain) = http_request(&server, "GET", "/favicon.svg", &[], "").await;
    assert_eq!(
        header(&plain, "content-encoding"),
        None,
        "only to browsers that ask"
    );
}

#[tokio::test]
async fn every_page_names_itself_once_for_tabs_and_search_engines() {
    let server = spawn_app().await;
    for path in ["/", "/battle/duel-42", "/no-such-page"] {
        let (_, page) = http_request(&server, "GET", path, &[], "").await;
        assert_eq!(
            page.matches("<title>Battle status</title>").count(),
            1,
            "{path}: {page}"
        );
        assert_eq!(
            page.matches(r#"<meta name="description" content="Live opponent status"#)
                .count(),
            1,
            "{path}"
        );
    }
}

#[tokio::test]
async fn hashed_file_names_are_cached_as_immutable_and_plain_ones_are_not() {
    // What cargo leptos build writes next to the binary (here, this test's).
    let hashes = std::env::current_exe().unwrap().with_file_name("hash.txt");
    std::fs::write(&hashes, "js: 2WJf2D8fZDKjh5yn\nwasm: Vx9\ncss: Cq7\n").unwrap();
    let hashed = spawn_site(
        site_with("battle-status.2WJf2D8fZDKjh5yn.js", true),
        &MemoryBus::new(),
        |_| {},
    )
    .await;
    let path = "/pkg/battle-status.2WJf2D8fZDKjh5yn.js";
    let (_, page) = http_request(&hashed, "GET", "/battle/duel-42", &[], "").await;
    assert!(page.contains(path), "the page names the hashed file");
    assert!(
        page.contains("/pkg/battle-status.Cq7.css"),
        "and the hashed stylesheet"
    );
    let (status, response) = http_request(&hashed, "GET", path, &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&response, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let (status, missing) = http_request(&hashed, "GET", "/pkg/gone.js", &[], "").await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&missing, "cache-control"),
        None,
        "no caching of a 404"
    );

    let plain = spawn_site(
        site_with("battle-status.js", false),
        &MemoryBus::new(),
        |_| {},
    )
    .await;
    let (status, response) = http_request(&plain, "GET", "/pkg/battle-status.js", &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&response, "cache-control"),
        None,
        "the name does not change with it"
    );
}
