//! OAuth 2.1 resource-server checks for tollgate's MCP routes, following the MCP
//! authorization spec (2025-06-18 / 2025-11-25): the gateway is a *resource server*
//! that accepts bearer JWT access tokens issued by an external authorization server.
//!
//! Pure logic, no I/O: the gateway fetches the authorization server's JWKS itself and
//! hands the bytes to [`Jwks::parse`], and passes the current time to
//! [`Validator::validate`] as `now_unix`, so every check is testable with a fixed clock
//! and nothing here blocks a proxy worker.
//!
//! # Flow per request
//!
//! 1. No `Authorization: Bearer` header: answer 401 with
//!    [`www_authenticate`]`(metadata_url, None, scope)` so the client can discover the
//!    authorization server through the RFC 9728 document served at [`metadata_path`]
//!    (body: [`protected_resource_metadata`]).
//! 2. Otherwise [`Validator::validate`]. On [`AuthError::UnknownKey`] refetch the JWKS
//!    once (the issuer may have rotated keys) and validate again.
//! 3. On error answer [`AuthError::status`] (401, or 403 for
//!    [`AuthError::InsufficientScope`]) with `www_authenticate(.., Some(&err), ..)`.
//!
//! # What is accepted
//!
//! Only asymmetric signatures: RS256/RS384/RS512 (RSA 2048–8192 bits) and ES256
//! (P-256), verified with `ring`. `none` and HS* are always rejected: with a public
//! JWKS an HMAC "key" would be public, the classic algorithm-confusion forgery.
//! `exp` is mandatory, the issuer must match exactly and the audience must name this
//! resource (RFC 8707 / MCP token audience binding: tokens minted for another service
//! must not be replayed here).

mod challenge;
mod decode;
mod error;
mod jwks;
mod jwt;

pub use challenge::{metadata_path, protected_resource_metadata, www_authenticate, WELL_KNOWN};
pub use error::{AuthError, JwksError};
pub use jwks::{Algorithm, Jwks};
pub use jwt::{Claims, Validator, DEFAULT_LEEWAY_SECS, MAX_TOKEN_LEN};
