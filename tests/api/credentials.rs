//! Issue 14, point 5: credentials and secrets, against the real binary. Logout needs the
//! whole refresh token; the data directory is created 0700; a secret file open to group
//! or others, or a short signing key, stops the start with an error that names the file
//! and the fix.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::helpers::*;
use crate::users::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_with_the_family_id_and_a_forged_secret_is_refused() {
    let app = spawn_app(AppOpts::new()).await;
    let user = app.shopper("logout-forge@example.com").await;
    let family = user.refresh.split('.').next().unwrap().to_owned();
    let generation = user.refresh.split('.').nth(1).unwrap().to_owned();
    let forged = format!("{family}.{generation}.{}", "ab".repeat(32));
    assert_ne!(forged, user.refresh);
    app.logout(&forged).await.expect_error(401, "invalid_token");
    // The family is untouched: the real token still refreshes, then logs out.
    let (_, next) = token_pair(&app.refresh(&user.refresh).await);
    // The used token of the family is no longer current: refused, the family stays.
    app.logout(&user.refresh)
        .await
        .expect_error(401, "invalid_token");
    let resp = app.logout(&next).await;
    assert_eq!(resp.status, 204, "logout: {}", resp.text);
    app.refresh(&next).await.expect_error(401, "invalid_token");
    // Logging out again with the same token changes nothing and is not an error.
    let resp = app.logout(&next).await;
    assert_eq!(resp.status, 204, "logout again: {}", resp.text);
}

fn serve_cmd(data_dir: &Path, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_emporium"));
    cmd.args([
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ])
    .arg("--data-dir")
    .arg(data_dir)
    .current_dir(
        data_dir
            .ancestors()
            .find(|d| d.is_dir())
            .expect("an existing ancestor"),
    )
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    // Hermetic: nothing from the outer environment configures the child.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("EMPORIUM_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `emporium serve` on `data_dir` and expects it to refuse to start; returns stderr.
async fn refused_start(data_dir: &Path, env: &[(&str, &str)]) -> String {
    let out = tokio::time::timeout(Duration::from_secs(60), serve_cmd(data_dir, env).output())
        .await
        .expect("the refused start ended in time")
        .expect("the binary ran");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started anyway: {stderr}");
    stderr
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_creates_its_data_dir_0700_and_its_secret_files_0600() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("new/data");
    let mut child = serve_cmd(&dir, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Deadline::new(Duration::from_secs(30), "the server to write http.addr");
    while !dir.join("http.addr").exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited with {status}");
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
    let modes = (
        mode(&dir),
        mode(&dir.join("admin.token")),
        mode(&dir.join("jwt.key")),
    );
    child.kill().await.expect("kill");
    assert_eq!(modes, (0o700, 0o600, 0o600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_secret_files_and_short_keys_stop_the_start_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::DirBuilder::new().create(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let token = [("EMPORIUM_ADMIN_TOKEN", ADMIN_TOKEN)];

    // A jwt.key open to others is refused, naming the file and the chmod.
    let key = dir.join("jwt.key");
    std::fs::write(&key, format!("k1 {}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = refused_start(&dir, &token).await;
    assert!(
        text.contains(&format!("chmod 600 {}", key.display())),
        "{text}"
    );

    // A key under 32 bytes in jwt.key is refused, naming the file.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, format!("k1 {}\n", "ab".repeat(16))).unwrap();
    let text = refused_start(&dir, &token).await;
    assert!(text.contains(&key.display().to_string()), "{text}");
    assert!(text.contains("at least 32 bytes"), "{text}");

    // So is one from the environment (config keys are checked the same way).
    let text = refused_start(
        &dir,
        &[
            token[0],
            (
                "EMPORIUM_AUTH__JWT_KEYS",
                r#"[{kid="k1", secret="too-short"}]"#,
            ),
        ],
    )
    .await;
    assert!(text.contains("at least 32 bytes"), "{text}");

    // A loose admin.token (no token in the environment) is refused.
    std::fs::write(&key, format!("k1 {}\n", "ab".repeat(32))).unwrap();
    let admin = dir.join("admin.token");
    std::fs::write(&admin, "an-operator-token-of-some-length").unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = refused_start(&dir, &[]).await;
    assert!(
        text.contains(&format!("chmod 600 {}", admin.display())),
        "{text}"
    );
}
