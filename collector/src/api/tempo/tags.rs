//! Tempo's tag discovery: `GET /api/search/tags` (`{"tagNames":[...]}`),
//! `GET /api/v2/search/tags` (`{"scopes":[{"name","tags"}]}`),
//! `GET /api/search/tag/<name>/values` (`{"tagValues":["..."]}`) and
//! `GET /api/v2/search/tag/<traceql identifier>/values`
//! (`{"tagValues":[{"type","value"}]}`, optionally narrowed by a `q` filter).
//!
//! Data flow: the same bounded, newest-first span scan as search
//! ([`super::search::scan`], `start`/`end` default the last hour) → names or values
//! collected into sorted sets → cut at `limit` → JSON with `metrics.inspectedBytes`.
//! `scope` is `span`, `resource`, `intrinsic`, `all` (default) or one of Tempo's
//! `event`, `link`, `instrumentation` (not indexed here: empty).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::HeaderMap;
use serde_json::{json, Value};

use super::search::{bad, count_param, group, scan, time_range, Reject};
use super::text;
use super::traceql::{self, attr, Field, Scope};
use crate::api::params::Params;
use crate::receiver::tenant_from_headers;
use crate::state::AppState;

/// Intrinsic fields, as Tempo lists them.
const INTRINSICS: [&str; 8] = [
    "duration",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "status",
    "statusMessage",
    "traceDuration",
];

/// Most values one tag-values answer carries when no `limit` is given.
const DEFAULT_MAX_VALUES: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum TagScope {
    All,
    Span,
    Resource,
    Intrinsic,
    /// A scope Tempo has that we do not index (event, link, instrumentation).
    Unindexed,
}

fn scope_param(params: &Params) -> Result<TagScope, Reject> {
    Ok(match params.get("scope").unwrap_or("all") {
        "all" => TagScope::All,
        "span" => TagScope::Span,
        "resource" => TagScope::Resource,
        "intrinsic" => TagScope::Intrinsic,
        "event" | "link" | "instrumentation" => TagScope::Unindexed,
        other => {
            return Err(bad(format!(
                "invalid scope {other:?}: use resource, span, intrinsic, event, link, instrumentation or all"
            )))
        }
    })
}

fn respond(r: Result<Value, Reject>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err((status, msg)) => text(status, msg),
    }
}

/// Span and resource attribute names seen in the range, and the bytes inspected.
async fn names(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(BTreeSet<String>, BTreeSet<String>, u64), Reject> {
    let tenant = tenant_from_headers(state, headers).map_err(|(s, e)| (s, e.to_string()))?;
    let (start, end) = time_range(params, state.clock.now_ms())?;
    let scanned = scan(state, tenant, start, end).await?;
    let mut span = BTreeSet::new();
    let mut resource = BTreeSet::new();
    for s in &scanned.spans {
        for (k, _) in &s.attributes {
            if !span.contains(k) {
                span.insert(k.clone());
            }
        }
        for (k, _) in &s.resource {
            if !resource.contains(k) {
                resource.insert(k.clone());
            }
        }
    }
    Ok((span, resource, scanned.bytes_inspected))
}

fn limited(set: impl IntoIterator<Item = String>, limit: usize) -> Vec<String> {
    set.into_iter().take(limit).collect()
}

/// `GET /api/search/tags`.
pub async fn tags_v1(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    respond(
        async {
            let scope = scope_param(&params)?;
            let limit = count_param(&params, "limit", usize::MAX)?;
            let (span, resource, bytes) = names(&state, &headers, &params).await?;
            let tags: Vec<String> = match scope {
                TagScope::All => limited(
                    span.into_iter().chain(resource).collect::<BTreeSet<_>>(),
                    limit,
                ),
                TagScope::Span => limited(span, limit),
                TagScope::Resource => limited(resource, limit),
                TagScope::Intrinsic => limited(INTRINSICS.iter().map(|s| s.to_string()), limit),
                TagScope::Unindexed => Vec::new(),
            };
            Ok::<_, Reject>(
                json!({"tagNames": tags, "metrics": {"inspectedBytes": bytes.to_string()}}),
            )
        }
        .await,
    )
}

/// `GET /api/v2/search/tags`.
pub async fn tags_v2(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    respond(
        async {
            let scope = scope_param(&params)?;
            let limit = count_param(&params, "limit", usize::MAX)?;
            let (span, resource, bytes) = names(&state, &headers, &params).await?;
            let mut scopes = Vec::new();
            if matches!(scope, TagScope::All | TagScope::Resource) {
                scopes.push(json!({"name": "resource", "tags": limited(resource, limit)}));
            }
            if matches!(scope, TagScope::All | TagScope::Span) {
                scopes.push(json!({"name": "span", "tags": limited(span, limit)}));
            }
            if matches!(scope, TagScope::All | TagScope::Intrinsic) {
                let i = INTRINSICS.iter().map(|s| s.to_string());
                scopes.push(json!({"name": "intrinsic", "tags": limited(i, limit)}));
            }
            Ok::<_, Reject>(
                json!({"scopes": scopes, "metrics": {"inspectedBytes": bytes.to_string()}}),
            )
        }
        .await,
    )
}

/// TraceQL type name and text of a stored attribute value.
fn typed(v: &Value) -> Option<(&'static str, String)> {
    Some(match v {
        Value::String(s) => ("string", s.clone()),
        Value::Bool(b) => ("bool", b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("int", n.to_string()),
        Value::Number(n) => ("float", n.to_string()),
        _ => return None,
    })
}

/// Distinct `(type, value)` pairs of `field` over the spans (matching `filter`).
async fn values(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    params: &Params,
    field: Field,
    filter: Option<traceql::Cond>,
) -> Result<(BTreeSet<(&'static str, String)>, u64), Reject> {
    let tenant = tenant_from_headers(state, headers).map_err(|(s, e)| (s, e.to_string()))?;
    let (start, end) = time_range(params, state.clock.now_ms())?;
    let scanned = scan(state, tenant, start, end).await?;
    let bytes = scanned.bytes_inspected;
    let mut out = BTreeSet::new();
    let needs_trace = matches!(field, Field::RootName | Field::RootServiceName)
        || filter.as_ref().is_some_and(|c| c.uses_trace_facts());
    let groups = if needs_trace {
        group(scanned.spans)
    } else {
        // one pseudo-group: no trace facts needed
        vec![super::search::TraceGroup {
            trace_id: Vec::new(),
            spans: scanned.spans,
            facts: Default::default(),
            start_ns: 0,
            root_service: String::new(),
            root_name: String::new(),
        }]
    };
    for g in &groups {
        for s in &g.spans {
            if filter.as_ref().is_some_and(|c| !c.matches(s, &g.facts)) {
                continue;
            }
            let v = match &field {
                Field::Attr(scope, name) => attr(s, *scope, name).and_then(typed),
                Field::Name => Some(("string", s.name.clone())),
                Field::StatusMessage => {
                    Some(("string", s.status_message.clone())).filter(|(_, m)| !m.is_empty())
                }
                Field::Status => Some(("keyword", traceql::status_word(s.status_code).into())),
                Field::Kind => Some(("keyword", traceql::kind_word(s.kind).into())),
                Field::RootName => g.facts.root_name.clone().map(|n| ("string", n)),
                Field::RootServiceName => g.facts.root_service.clone().map(|n| ("string", n)),
                Field::Duration | Field::TraceDuration => None,
            };
            if let Some(v) = v {
                if out.len() < DEFAULT_MAX_VALUES || out.contains(&v) {
                    out.insert(v);
                }
            }
        }
    }
    Ok((out, bytes))
}

/// `GET /api/search/tag/<name>/values`: a plain attribute name (span or resource),
/// or `name` / `status` / `kind`.
pub async fn tag_values_v1(
    State(state): State<Arc<AppState>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    respond(
        async {
            let limit = count_param(&params, "limit", usize::MAX)?;
            let field = match traceql::intrinsic(&tag) {
                Some(f) => f,
                None => Field::Attr(Scope::Any, tag.clone()),
            };
            let (vals, bytes) = values(&state, &headers, &params, field, None).await?;
            let set: BTreeSet<String> = vals.into_iter().map(|(_, v)| v).collect();
            Ok::<_, Reject>(json!({"tagValues": limited(set, limit), "metrics": {"inspectedBytes": bytes.to_string()}}))
        }
        .await,
    )
}

/// `GET /api/v2/search/tag/<identifier>/values[?q=...]`. An unparsable `q` is
/// ignored (Tempo answers the unfiltered list then, so half-typed queries still help).
pub async fn tag_values_v2(
    State(state): State<Arc<AppState>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    respond(
        async {
            let limit = count_param(&params, "limit", usize::MAX)?;
            let field =
                traceql::parse_field(&tag).map_err(|e| bad(format!("invalid tag {tag:?}: {e}")))?;
            let filter = params.get("q").and_then(|q| traceql::parse(q).ok());
            let (vals, bytes) = values(&state, &headers, &params, field, filter).await?;
            let list: Vec<Value> = vals
                .into_iter()
                .take(limit)
                .map(|(t, v)| json!({"type": t, "value": v}))
                .collect();
            Ok::<_, Reject>(
                json!({"tagValues": list, "metrics": {"inspectedBytes": bytes.to_string()}}),
            )
        }
        .await,
    )
}
