//! Secrets at rest: the data directory is created `0700`, the secret files in it
//! (`admin.token`, `jwt.key`) are written `0600`, and at start-up an existing secret file
//! that group or others may read is refused with an error naming the file and the `chmod`
//! that fixes it.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "{path} is accessible by group or others (mode {mode:03o}); run `chmod 600 {path}` and start again"
    )]
    Loose { path: PathBuf, mode: u32 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl SecretFileError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Creates the data directory (and its parents) `0700` if it does not exist. An existing
/// directory keeps its mode; one open to group or others is logged.
pub fn create_data_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %dir.display(), mode = format!("{mode:03o}"),
            "the data directory is open to group or others; `chmod 700` it");
    }
    Ok(())
}

/// The contents of a secret file, `None` if it does not exist; refused if group or others
/// have any permission on it.
pub fn read_secret_file(path: &Path) -> Result<Option<String>, SecretFileError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretFileError::io(path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Loose {
            path: path.to_owned(),
            mode,
        });
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| SecretFileError::io(path, e))
}

/// Writes a secret file `0600` and syncs it.
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_dir_is_created_0700_and_secret_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/data");
        create_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("admin.token");
        write_private(&f, "x").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(read_secret_file(&f).unwrap().as_deref(), Some("x"));
        assert!(read_secret_file(&dir.join("none")).unwrap().is_none());
    }

    #[test]
    fn a_secret_file_open_to_group_or_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("jwt.key");
        write_private(&f, "k1 00").unwrap();
        for loose in [0o640, 0o604, 0o644, 0o660] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(loose)).unwrap();
            let e = read_secret_file(&f).unwrap_err();
            assert!(matches!(e, SecretFileError::Loose { mode, .. } if mode == loose));
            let text = e.to_string();
            assert!(text.contains(&f.display().to_string()), "{text}");
            assert!(
                text.contains(&format!("chmod 600 {}", f.display())),
                "{text}"
            );
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(
            read_secret_file(&f).unwrap().is_some(),
            "owner-only is fine"
        );
    }
}
