//! Product images: checked (PNG, JPEG or WebP by their magic bytes, with their
//! dimensions read from the header), and stored content-addressed through the
//! `object_store` crate: the local filesystem under the data directory by default, any
//! S3 API when `media.store_url` names one. An image's id is the SHA-256 of its bytes, so
//! its URL is stable and its `ETag` is its id.
//!
//! Durability: a local image is fsync'd (the file, then each directory up to the root)
//! before `put` returns, so the 201 that names it is only sent once it is on disk; an S3
//! `PUT` is durable when it answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

/// The image formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base.to_ascii_lowercase().as_str() {
            "image/png" => Some(Self::Png),
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }
    /// The format the magic bytes say.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(Self::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefusal {
    /// Not a PNG, JPEG or WebP, or the bytes are not what the `Content-Type` says.
    #[error("{0}")]
    Unsupported(String),
    /// The header cannot be read, or the dimensions are out of bounds.
    #[error("{0}")]
    Invalid(String),
}

/// A checked image: its format and dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

/// Checks `bytes` declared as `content_type` against the format's magic bytes and
/// `max_dimension`.
pub fn check(
    bytes: &[u8],
    content_type: Option<&str>,
    max_dimension: u32,
) -> Result<Checked, ImageRefusal> {
    let declared = content_type
        .and_then(ImageKind::from_content_type)
        .ok_or_else(|| {
            ImageRefusal::Unsupported(format!(
                "Content-Type must be image/png, image/jpeg or image/webp, not {:?}",
                content_type.unwrap_or("")
            ))
        })?;
    let actual = ImageKind::sniff(bytes).ok_or_else(|| {
        ImageRefusal::Unsupported("the body is not a PNG, JPEG or WebP image".into())
    })?;
    if actual != declared {
        return Err(ImageRefusal::Unsupported(format!(
            "the body is {}, not {}",
            actual.content_type(),
            declared.content_type()
        )));
    }
    let size = imagesize::blob_size(bytes)
        .map_err(|e| ImageRefusal::Invalid(format!("the image header cannot be read: {e}")))?;
    let (w, h) = (size.width as u64, size.height as u64);
    let max = u64::from(max_dimension);
    if w == 0 || h == 0 || w > max || h > max {
        return Err(ImageRefusal::Invalid(format!(
            "the image is {w}x{h}; each side must be 1 to {max_dimension} pixels"
        )));
    }
    Ok(Checked {
        kind: actual,
        width: w as u32,
        height: h as u32,
    })
}

/// The id of an image: the hex SHA-256 of its bytes.
pub fn image_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why the image store failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("image store: {0}")]
    Store(#[from] object_store::Error),
    #[error("image store: {0}")]
    Io(#[from] std::io::Error),
    #[error("image store: {0}")]
    Config(String),
}

/// Where images are kept.
pub struct Media {
    store: Arc<dyn ObjectStore>,
    /// The root of a local store (to fsync what it writes); `None` for S3.
    local_root: Option<PathBuf>,
}

fn location(sku: &str, id: &str) -> StorePath {
    StorePath::from(format!("images/{sku}/{id}"))
}

fn sync_dirs(root: &Path, file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

impl Media {
    /// The store `store_url` names (empty: `data_dir/media`).
    pub fn open(store_url: &str, data_dir: &Path) -> Result<Self, MediaError> {
        if store_url.is_empty() {
            let root = data_dir.join("media");
            std::fs::create_dir_all(&root)?;
            let fs = LocalFileSystem::new_with_prefix(&root)?;
            return Ok(Self {
                store: Arc::new(fs),
                local_root: Some(root),
            });
        }
        if !store_url.starts_with("s3://") {
            return Err(MediaError::Config(format!(
                "media.store_url must be empty or an s3:// URL, not {store_url:?}"
            )));
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_url(store_url)
            .build()?;
        Ok(Self {
            store: Arc::new(s3),
            local_root: None,
        })
    }

    /// Stores the image of `sku` with id `id`, durably, before returning.
    pub async fn put(&self, sku: &str, id: &str, bytes: bytes::Bytes) -> Result<(), MediaError> {
        let loc = location(sku, id);
        self.store.put(&loc, PutPayload::from_bytes(bytes)).await?;
        if let Some(root) = &self.local_root {
            let path = root.join("images").join(sku).join(id);
            let root = root.clone();
            tokio::task::spawn_blocking(move || sync_dirs(&root, &path))
                .await
                .map_err(|e| MediaError::Config(format!("fsync task: {e}")))??;
        }
        Ok(())
    }

    /// The bytes of an image; `None` if there is none.
    pub async fn get(&self, sku: &str, id: &str) -> Result<Option<bytes::Bytes>, MediaError> {
        match self.store.get(&location(sku, id)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1x1 PNG.
    pub(crate) const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn the_magic_bytes_must_match_the_content_type() {
        let ok = check(PNG, Some("image/png"), 10).unwrap();
        assert_eq!((ok.kind, ok.width, ok.height), (ImageKind::Png, 1, 1));
        assert!(matches!(
            check(PNG, Some("image/jpeg"), 10),
            Err(ImageRefusal::Unsupported(_))
        ));
        assert!(matches!(
            check(b"hello", Some("image/png"), 10),
            Err(ImageRefusal::Unsupported(_))
        ));
        assert!(matches!(
            check(PNG, Some("text/plain"), 10),
            Err(ImageRefusal::Unsupported(_))
        ));
        assert!(matches!(
            check(&PNG[..20], Some("image/png"), 10),
            Err(ImageRefusal::Invalid(_))
        ));
        assert!(matches!(
            check(PNG, Some("image/png"), 0),
            Err(ImageRefusal::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn a_local_image_round_trips_under_its_content_id() {
        let dir = tempfile::tempdir().unwrap();
        let m = Media::open("", dir.path()).unwrap();
        let id = image_id(PNG);
        m.put("MUG-1", &id, bytes::Bytes::from_static(PNG))
            .await
            .unwrap();
        assert_eq!(m.get("MUG-1", &id).await.unwrap().as_deref(), Some(PNG));
        assert_eq!(m.get("MUG-1", "nope").await.unwrap(), None);
        assert!(dir.path().join("media/images/MUG-1").join(&id).exists());
    }
}
