//! Password hashing with argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1, as
//! OWASP recommends), run on the blocking pool so it never stalls the async workers.
//!
//! [`HashSlots`] bounds how many run at once (`auth.max_concurrent_hashes`): the edge
//! takes a slot for each login and register request (each hashes or verifies exactly
//! once) and holds it until the answer; with none free the request is refused with
//! [`Overloaded`] (503 `overloaded`), never queued.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every hashing slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password hashes are running; retry shortly")]
pub struct Overloaded;

/// The slots for password hashing and verification.
#[derive(Debug, Clone)]
pub struct HashSlots(Arc<Semaphore>);

impl HashSlots {
    /// `n` slots (at least 1).
    pub fn new(n: usize) -> Self {
        Self(Arc::new(Semaphore::new(n.max(1))))
    }

    /// A slot, held until dropped, or [`Overloaded`] when none is free.
    pub fn try_acquire(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        self.0.clone().try_acquire_owned().map_err(|_| Overloaded)
    }
}

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Checks a password against a PHC string. An unparsable hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Checks the password rules and says what is wrong.
pub fn validate(password: &str, email: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(10..=128).contains(&n) {
        return Err("password must be 10 to 128 characters".into());
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("password must not be the email address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn slots_are_bounded_and_come_back() {
        let slots = super::HashSlots::new(2);
        let a = slots.try_acquire().unwrap();
        let _b = slots.try_acquire().unwrap();
        assert_eq!(slots.try_acquire().unwrap_err(), super::Overloaded);
        drop(a);
        assert!(slots.try_acquire().is_ok());
        assert!(super::HashSlots::new(0).try_acquire().is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() {
        let a = super::hash("correct horse battery".into()).await.unwrap();
        let b = super::hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(super::verify("correct horse battery".into(), a.clone()).await);
        assert!(!super::verify("wrong horse battery".into(), a).await);
        assert!(!super::verify("x".into(), "not a hash".into()).await);
        assert!(super::validate("short", "a@b.co").is_err());
        assert!(super::validate("a@b.co-long", "A@B.CO-LONG").is_err());
        assert!(super::validate("long enough pw", "a@b.co").is_ok());
    }
}
