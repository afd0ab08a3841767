//! Small HTTP client (`ureq`, status codes returned rather than turned into errors)
//! and typed readers for the collector's Prometheus, Loki and Tempo APIs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// One HTTP answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: String,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }
}

/// Client for one `http://host:port` base, with headers sent on every request.
#[derive(Clone)]
pub struct Http {
    base: String,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Http {
            base: base.trim_end_matches('/').to_string(),
            headers: Vec::new(),
            agent: config.into(),
        }
    }

    /// The same client, adding `name: value` to every request.
    pub fn with_header(&self, name: &str, value: &str) -> Http {
        let mut h = self.clone();
        h.headers.push((name.to_string(), value.to_string()));
        h
    }

    /// The same client with `Authorization: Bearer <token>`.
    pub fn with_token(&self, token: &str) -> Http {
        self.with_header("Authorization", &format!("Bearer {token}"))
    }

    /// The same client with `X-Scope-OrgID: <tenant>`.
    pub fn with_tenant(&self, tenant: &str) -> Http {
        self.with_header("X-Scope-OrgID", tenant)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` with URL-encoded `query` pairs and extra `headers`.
    pub fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.get(format!("{}{}", self.base, path));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        for (k, v) in self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(headers.iter().copied())
        {
            req = req.header(k, v);
        }
        read(req.call()?)
    }

    /// POST `body` to `path` with extra `headers`.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.post(format!("{}{}", self.base, path));
        for (k, v) in self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(headers.iter().copied())
        {
            req = req.header(k, v);
        }
        read(req.send(body)?)
    }

    /// GET that must succeed at the transport level.
    pub fn get_ok(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        self.get(path, query, &[])
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.base))
    }

    /// A Prometheus API call answering 200 with `"status":"success"`; returns `data`.
    pub fn prom_data(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let reply = self.get_ok(path, query);
        assert_eq!(reply.status, 200, "GET {path} {query:?}: {}", reply.body);
        let json = reply.json();
        assert_eq!(
            json["status"], "success",
            "GET {path} {query:?}: {}",
            reply.body
        );
        json["data"].clone()
    }

    /// `/api/v1/query` at `time` (seconds): the instant vector.
    pub fn query(&self, promql: &str, time: f64) -> Vec<InstantSample> {
        let t = time.to_string();
        let data = self.prom_data("/api/v1/query", &[("query", promql), ("time", &t)]);
        assert_eq!(data["resultType"], "vector", "query {promql}: {data}");
        data["result"]
            .as_array()
            .expect("result array")
            .iter()
            .map(|r| InstantSample {
                metric: labels_of(&r["metric"]),
                timestamp: r["value"][0].as_f64().expect("sample time"),
                value: parse_value(&r["value"][1]),
            })
            .collect()
    }

    /// `/api/v1/query_range`: one entry per series.
    pub fn query_range(&self, promql: &str, start: f64, end: f64, step: f64) -> Vec<RangeSeries> {
        let (s, e, st) = (start.to_string(), end.to_string(), step.to_string());
        let data = self.prom_data(
            "/api/v1/query_range",
            &[("query", promql), ("start", &s), ("end", &e), ("step", &st)],
        );
        assert_eq!(data["resultType"], "matrix", "query_range {promql}: {data}");
        data["result"]
            .as_array()
            .expect("result array")
            .iter()
            .map(|r| RangeSeries {
                metric: labels_of(&r["metric"]),
                values: r["values"]
                    .as_array()
                    .expect("values array")
                    .iter()
                    .map(|p| (p[0].as_f64().expect("point time"), parse_value(&p[1])))
                    .collect(),
            })
            .collect()
    }

    /// `/api/v1/series?match[]=...` over `[start, end]` seconds.
    pub fn series(&self, matcher: &str, start: f64, end: f64) -> Vec<Labels> {
        let (s, e) = (start.to_string(), end.to_string());
        let data = self.prom_data(
            "/api/v1/series",
            &[("match[]", matcher), ("start", &s), ("end", &e)],
        );
        data.as_array()
            .expect("series array")
            .iter()
            .map(labels_of)
            .collect()
    }

    /// Loki `query_range` (times in ns, `direction=forward`): the streams.
    pub fn loki_query_range(
        &self,
        logql: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Vec<LogStream> {
        let (s, e, l) = (start_ns.to_string(), end_ns.to_string(), limit.to_string());
        let reply = self.get_ok(
            "/loki/api/v1/query_range",
            &[
                ("query", logql),
                ("start", &s),
                ("end", &e),
                ("limit", &l),
                ("direction", "forward"),
            ],
        );
        assert_eq!(
            reply.status, 200,
            "loki query_range {logql}: {}",
            reply.body
        );
        let json = reply.json();
        assert_eq!(
            json["status"], "success",
            "loki query_range {logql}: {}",
            reply.body
        );
        assert_eq!(
            json["data"]["resultType"], "streams",
            "loki query_range {logql}: {}",
            reply.body
        );
        json["data"]["result"]
            .as_array()
            .expect("result array")
            .iter()
            .map(|s| LogStream {
                stream: labels_of(&s["stream"]),
                values: s["values"]
                    .as_array()
                    .expect("values array")
                    .iter()
                    .map(|v| {
                        let ts = v[0]
                            .as_str()
                            .expect("ns timestamp string")
                            .parse()
                            .expect("ns timestamp");
                        (ts, v[1].as_str().expect("log line").to_string())
                    })
                    .collect(),
            })
            .collect()
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.body_mut().read_to_string()?;
    Ok(Reply {
        status,
        body,
        content_type,
    })
}

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

fn labels_of(v: &Value) -> Labels {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_value(v: &Value) -> f64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("sample value is not a string: {v}"));
    match s {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s
            .parse()
            .unwrap_or_else(|e| panic!("sample value {s:?}: {e}")),
    }
}

/// One element of an instant vector.
#[derive(Clone, Debug)]
pub struct InstantSample {
    pub metric: Labels,
    pub timestamp: f64,
    pub value: f64,
}

/// One series of a range query: `(time seconds, value)` points.
#[derive(Clone, Debug)]
pub struct RangeSeries {
    pub metric: Labels,
    pub values: Vec<(f64, f64)>,
}

/// One Loki stream: its labels and `(ns, line)` entries.
#[derive(Clone, Debug)]
pub struct LogStream {
    pub stream: Labels,
    pub values: Vec<(i64, String)>,
}

/// Builds a label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
