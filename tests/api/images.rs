//! Product images over the real binary: an upload round-trips byte for byte with its
//! `ETag`, is cached by it, survives a restart, and anything but a real image is refused.

use crate::helpers::*;

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

async fn upload(app: &TestApp, sku: &str, content_type: &str, body: Vec<u8>) -> Resp {
    let rb = app
        .admin(reqwest::Method::POST, &format!("/v1/products/{sku}/images"))
        .header("content-type", content_type)
        .body(body);
    send(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_round_trips_with_its_etag_and_a_non_image_is_415() {
    let mut app = spawn_app(AppOpts::new().env("EMPORIUM_MEDIA__MAX_IMAGE_BYTES", 4096)).await;
    app.create_product("MUG-1", 900, "kitchen").await;

    let created = upload(&app, "MUG-1", "image/png", PNG.to_vec()).await;
    let img = created.expect(201).clone();
    let url = img["url"].as_str().unwrap().to_owned();
    let id = img["id"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/v1/products/MUG-1/images/{id}"));
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(1), Some(1))
    );

    let get = |app: &TestApp, inm: Option<String>| {
        let mut rb = app.client.get(app.url(&url));
        if let Some(v) = inm {
            rb = rb.header("if-none-match", v);
        }
        rb.send()
    };
    let r = get(&app, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{id}\""));
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG, "the same bytes");
    let r = get(&app, Some(etag.clone())).await.unwrap();
    assert_eq!(r.status(), 304);
    let product = app.get("/v1/products/MUG-1").await;
    assert_eq!(product.expect(200)["images"][0]["id"], id.as_str());

    // Refused: not an image, not what Content-Type says, too large, no such product.
    upload(&app, "MUG-1", "text/plain", b"hello".to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    upload(&app, "MUG-1", "image/png", b"hello, not a png".to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    upload(&app, "MUG-1", "image/jpeg", PNG.to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    upload(&app, "MUG-1", "image/png", PNG[..20].to_vec())
        .await
        .expect_error(400, "validation");
    let mut big = PNG.to_vec();
    big.resize(5000, 0);
    upload(&app, "MUG-1", "image/png", big)
        .await
        .expect_error(413, "payload_too_large");
    upload(&app, "NOPE-1", "image/png", PNG.to_vec())
        .await
        .expect_error(404, "not_found");
    let r = app
        .get(&format!("/v1/products/MUG-1/images/{}", "0".repeat(64)))
        .await;
    r.expect_error(404, "not_found");

    // Acknowledged means on disk: after kill -9 the image is still served.
    app.kill();
    app.restart().await;
    let r = get(&app, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
}
