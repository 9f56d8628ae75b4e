//! Fuzzes the HTTP edge's decoders through the real routes: path segments, query
//! strings and every JSON body, as anonymous, shopper, operator (the bootstrap admin
//! token) or a forged bearer. One app over a temporary store (demo catalog seeded) serves
//! every input; an input that makes a handler panic, or answer 500, is a crash.
//!
//! Input: byte 0 picks the method, byte 1 the caller, then the path and query up to the
//! first `\n`, then the body.
#![no_main]

use std::sync::OnceLock;
use warp::filters::BoxedFilter;
use warp::reply::Response;

struct Harness {
    rt: tokio::runtime::Runtime,
    api: BoxedFilter<(Response,)>,
    shopper: String,
    _dir: tempfile::TempDir,
}

const ADMIN: &str = "fuzz-admin-token-0123456789abcdef0123";

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut cfg = emporium::app::config::Config::default();
        cfg.store.data_dir = dir.path().to_owned();
        cfg.auth.admin_token = emporium::app::config::Secret(ADMIN.into());
        cfg.rate_limit.enabled = false;
        let (api, shopper) = rt.block_on(async {
            let app = emporium::app::App::build(cfg).await.expect("the app starts");
            app.recover().await;
            emporium::app::demo::seed(&app).await.expect("the demo catalog");
            let api = emporium::http::api(&app);
            let creds = br#"{"email":"fuzz@example.com","password":"correct horse battery"}"#;
            for route in ["/v1/auth/register", "/v1/auth/login"] {
                let r = warp::test::request()
                    .method("POST")
                    .path(route)
                    .body(creds)
                    .reply(&api)
                    .await;
                if route.ends_with("login") {
                    let v: serde_json::Value =
                        serde_json::from_slice(r.body()).expect("a login answer");
                    let token = v["access_token"].as_str().expect("a token").to_owned();
                    return (api, token);
                }
            }
            unreachable!("the loop returns at login")
        });
        Harness {
            rt,
            api,
            shopper,
            _dir: dir,
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [m, who, rest @ ..] = data else { return };
    let method = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"][usize::from(*m) % 6];
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let Ok(path) = std::str::from_utf8(&rest[..split]) else { return };
    if !path.starts_with('/') || path.parse::<warp::http::Uri>().is_err() {
        return;
    }
    let body = rest.get(split + 1..).unwrap_or_default();
    let h = harness();
    let mut req = warp::test::request().method(method).path(path).body(body);
    req = match who % 4 {
        1 => req.header("authorization", format!("Bearer {ADMIN}")),
        2 => req.header("authorization", format!("Bearer {}", h.shopper)),
        3 => req.header("authorization", "Bearer forged.jwt.token"),
        _ => req,
    };
    if who & 4 != 0 {
        req = req.header("idempotency-key", "fuzz-key-1");
    }
    let resp = h.rt.block_on(req.reply(&h.api));
    assert_ne!(resp.status().as_u16(), 500, "{method} {path}: {:?}", resp.body());
});
