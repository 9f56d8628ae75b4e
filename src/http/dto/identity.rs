//! Accounts, tokens, profiles and roles: the bodies of `/v1/auth/*`, `/v1/me` and
//! `PUT /v1/admin/users/{user_id}/roles`.

use crate::domain::user::{Role as DomainRole, UserState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/auth/register` and `POST /v1/auth/login`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Matched case-insensitively and trimmed.
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters, not equal to the email (checked at registration).
    #[schema(example = "correct horse battery", min_length = 10, max_length = 128)]
    pub password: String,
}

/// A new account.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    pub user_id: Uuid,
}

/// An access token (a JWT) and an opaque refresh token, rotated on every use.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    #[schema(minimum = 0)]
    pub expires_in: u64,
    pub token_type: TokenType,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Bearer,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

wire_enum! {
    Role from DomainRole { Shopper, Operator, Admin }
}

/// A user's profile.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub user_id: Uuid,
    pub email: String,
    pub roles: Vec<Role>,
    /// `null` until set.
    #[schema(required = true)]
    pub name: Option<String>,
    /// `null` until set.
    #[schema(required = true)]
    pub phone: Option<String>,
}

impl Profile {
    pub fn new(user_id: Uuid, u: &UserState) -> Self {
        Self {
            user_id,
            email: u.email.clone().unwrap_or_default(),
            roles: u.roles.iter().map(|r| Role::from(*r)).collect(),
            name: u.name.clone(),
            phone: u.phone.clone(),
        }
    }
}

/// `PATCH /v1/me`: the fields to change; an absent field stays as it is.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1 to 100 characters after trimming.
    #[schema(example = "Ada Lovelace")]
    pub name: Option<String>,
    /// 5 to 20 characters: digits, spaces, `( ) -` and a leading `+`.
    #[schema(example = "+44 20 7946 0958")]
    pub phone: Option<String>,
}

/// `PUT /v1/admin/users/{user_id}/roles`: the user's new set of roles. An unknown role
/// is 400 `validation` naming the roles there are.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RolesUpdate {
    #[schema(value_type = Vec<Role>)]
    pub roles: Vec<String>,
}
