//! Tenant resolution for every write and read endpoint.
//!
//! With no tokens configured, the tenant is the `X-Scope-OrgID` header (HTTP) or
//! `x-scope-orgid` metadata (gRPC), `default` when absent. With tokens configured,
//! the request must carry `Authorization: Bearer <token>` and the tenant is the
//! token's; an `X-Scope-OrgID` naming another tenant is refused. Tokens are never
//! logged or echoed back.

use crate::config::{valid_tenant, AuthConfig};

/// Tenant used when authentication is off and the request names none.
pub const DEFAULT_TENANT: &str = "default";

/// Why a request has no tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed or unknown bearer token (HTTP 401, gRPC UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token is valid but the request names another tenant (HTTP 403,
    /// gRPC PERMISSION_DENIED).
    #[error("X-Scope-OrgID {0:?} does not match the tenant of the bearer token")]
    WrongTenant(String),
    /// `X-Scope-OrgID` is not a usable tenant id (HTTP 400, gRPC INVALID_ARGUMENT).
    #[error("X-Scope-OrgID {0:?} is not a valid tenant id (1-150 characters of [A-Za-z0-9_.-])")]
    BadTenant(String),
}

impl AuthError {
    /// Value of the `reason` label in `sightline_collector_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Unauthenticated(_) => "unauthenticated",
            AuthError::WrongTenant(_) => "permission_denied",
            AuthError::BadTenant(_) => "invalid_tenant",
        }
    }
}

/// Token table; empty means authentication is off.
#[derive(Clone, Default)]
pub struct Auth {
    /// `(token, tenant)` pairs, searched in constant time (see [`constant_time_eq`]).
    tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Auth {
    /// Builds the table from the config (inline tokens and `tokens_file`).
    pub fn from_config(cfg: &AuthConfig) -> Result<Auth, String> {
        let tokens = cfg
            .all_tokens()?
            .into_iter()
            .map(|t| (t.token, t.tenant))
            .collect();
        Ok(Auth { tokens })
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The tenant of a request, given its `Authorization` and `X-Scope-OrgID` values.
    pub fn resolve(
        &self,
        authorization: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<String, AuthError> {
        let org_id = org_id.map(str::trim).filter(|s| !s.is_empty());
        if !self.enabled() {
            return match org_id {
                None => Ok(DEFAULT_TENANT.to_string()),
                Some(t) if valid_tenant(t) => Ok(t.to_string()),
                Some(t) => Err(AuthError::BadTenant(t.to_string())),
            };
        }
        let header = authorization.ok_or(AuthError::Unauthenticated(
            "missing Authorization header: send `Authorization: Bearer <token>`",
        ))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AuthError::Unauthenticated(
                "malformed Authorization header: expected `Bearer <token>`",
            ))?;
        // Compare against every token without an early exit, so the answer time does
        // not tell an attacker how much of a token was right or which entry matched.
        let mut found: Option<&String> = None;
        for (candidate, tenant) in &self.tokens {
            if constant_time_eq(candidate.as_bytes(), token.as_bytes()) {
                found = Some(tenant);
            }
        }
        let tenant = found.ok_or(AuthError::Unauthenticated("invalid bearer token"))?;
        match org_id {
            Some(o) if o != tenant => Err(AuthError::WrongTenant(o.to_string())),
            _ => Ok(tenant.clone()),
        }
    }
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret-longer"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    fn auth() -> Auth {
        Auth::from_config(&AuthConfig {
            tokens: vec![
                TokenConfig {
                    token: "secret-a".into(),
                    tenant: "a".into(),
                },
                TokenConfig {
                    token: "secret-b".into(),
                    tenant: "b".into(),
                },
            ],
            tokens_file: None,
        })
        .unwrap()
    }

    #[test]
    fn off_uses_org_id_or_default() {
        let a = Auth::default();
        assert_eq!(a.resolve(None, None).unwrap(), "default");
        assert_eq!(
            a.resolve(Some("Bearer x"), Some("team-1")).unwrap(),
            "team-1"
        );
        assert_eq!(
            a.resolve(None, Some("a/b")).unwrap_err().reason(),
            "invalid_tenant"
        );
    }

    #[test]
    fn on_requires_a_known_token() {
        let a = auth();
        assert_eq!(a.resolve(Some("Bearer secret-b"), None).unwrap(), "b");
        assert_eq!(a.resolve(Some("Bearer secret-a"), Some("a")).unwrap(), "a");
        for bad in [None, Some("Basic abc"), Some("Bearer nope")] {
            let e = a.resolve(bad, None).unwrap_err();
            assert_eq!(e.reason(), "unauthenticated");
            assert!(!e.to_string().contains("secret"));
        }
        assert_eq!(
            a.resolve(Some("Bearer secret-a"), Some("b"))
                .unwrap_err()
                .reason(),
            "permission_denied"
        );
    }
}
