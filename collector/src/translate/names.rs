//! Metric and label names: building Prometheus names from OTLP metric names and
//! units, sanitizing OTLP attribute keys into label names, validating remote-write
//! names, and formatting floats for `le`/`quantile` label values.
//!
//! The rules follow the OpenTelemetry "Prometheus and OpenMetrics Compatibility"
//! specification and Prometheus' own OTLP receiver in its default
//! `UnderscoreEscapingWithSuffixes` mode:
//! - metric names are split into tokens at every character outside `[a-zA-Z0-9:]`
//!   (so runs of invalid characters and underscores collapse into one `_`, and
//!   leading/trailing underscores disappear); the unit suffix (`seconds`, `bytes`,
//!   `per_second`, ...) is appended unless the name already contains it; monotonic
//!   sums get `_total` (moved to the end if present elsewhere), gauges with unit `1`
//!   get `_ratio`; a leading digit is escaped with `_`;
//! - label names: characters outside `[a-zA-Z0-9_]` become `_`, runs of `_` collapse
//!   into one (so no attribute can produce the reserved `__` prefix), a leading digit
//!   gets the prefix `key_`.

/// The Prometheus metric type an OTLP metric becomes; it decides the name suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// OTLP Gauge: `_ratio` for unit `1`.
    Gauge,
    /// Monotonic cumulative Sum: `_total`.
    MonotonicCounter,
    /// Non-monotonic cumulative Sum: exported as a gauge, no type suffix.
    NonMonotonicCounter,
    /// Histogram or exponential histogram (`_bucket`/`_sum`/`_count` added later).
    Histogram,
    /// Summary (`_sum`/`_count` added later).
    Summary,
}

/// Builds the Prometheus metric name for an OTLP metric. `None` when the name has no
/// character that can be kept (e.g. empty or `"..."`).
pub fn otlp_metric_name(name: &str, unit: &str, kind: MetricKind) -> Option<String> {
    let mut tokens: Vec<String> = metric_tokens(name);
    if tokens.is_empty() {
        return None;
    }
    let (main_unit, per_unit) = unit_suffixes(unit);
    if let Some(main) = main_unit {
        let unit_tokens = metric_tokens(&main);
        if !contains_sequence(&tokens, &unit_tokens) {
            tokens.extend(unit_tokens);
        }
    }
    if let Some(per) = per_unit {
        let mut per_tokens = vec!["per".to_string()];
        per_tokens.extend(metric_tokens(&per));
        if per_tokens.len() > 1 && !contains_sequence(&tokens, &per_tokens) {
            tokens.extend(per_tokens);
        }
    }
    match kind {
        MetricKind::MonotonicCounter => {
            tokens.retain(|t| t != "total");
            tokens.push("total".into());
        }
        MetricKind::Gauge if unit.trim() == "1" => {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".into());
        }
        _ => {}
    }
    let joined = tokens.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        Some(format!("_{joined}"))
    } else {
        Some(joined)
    }
}

/// Splits at every character that is not valid in a metric name (underscore included).
fn metric_tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn contains_sequence(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The Prometheus words for a UCUM unit: `(main, per)`, e.g. `"By/s"` →
/// `(Some("bytes"), Some("second"))`. Annotations in braces are dropped, `1` has no
/// word (gauges get `_ratio` instead), unknown units are kept as written.
fn unit_suffixes(unit: &str) -> (Option<String>, Option<String>) {
    let unit = strip_annotations(unit);
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.trim(), None),
    };
    let main = Some(main)
        .filter(|m| !m.is_empty())
        .map(|m| main_unit_word(m).unwrap_or(m).to_string())
        .filter(|m| !m.is_empty());
    let per = per
        .filter(|p| !p.is_empty())
        .map(|p| per_unit_word(p).unwrap_or(p).to_string())
        .filter(|p| !p.is_empty());
    (main, per)
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "bit" => "bits",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Sanitizes an OTLP attribute key into a Prometheus label name. `None` for an empty
/// key (such an attribute is skipped).
pub fn sanitize_label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    Some(out)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Formats a float the way Prometheus' OTLP translator writes `le` and `quantile`
/// label values (Go `strconv.FormatFloat(v, 'f', -1, 64)`): shortest round-trip
/// digits, no exponent, `+Inf`/`-Inf`/`NaN`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Formats a double attribute value as a label value the way the OpenTelemetry
/// Collector's `AsString` does (ECMAScript number-to-string: plain digits, exponent
/// form below 1e-6 and from 1e21).
pub fn format_attribute_double(v: f64) -> String {
    if !v.is_finite() {
        return format_float(v);
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, unit: &str, kind: MetricKind) -> String {
        otlp_metric_name(n, unit, kind).unwrap()
    }

    #[test]
    fn metric_names_get_unit_and_type_suffixes() {
        use MetricKind::*;
        assert_eq!(
            name("http.server.request.duration", "s", Histogram),
            "http_server_request_duration_seconds"
        );
        assert_eq!(
            name("system.memory.usage", "By", NonMonotonicCounter),
            "system_memory_usage_bytes"
        );
        assert_eq!(
            name("process.cpu.time", "s", MonotonicCounter),
            "process_cpu_time_seconds_total"
        );
        assert_eq!(name("requests", "", MonotonicCounter), "requests_total");
        assert_eq!(
            name("requests_total", "", MonotonicCounter),
            "requests_total"
        );
        assert_eq!(
            name("total.requests", "", MonotonicCounter),
            "requests_total"
        );
        assert_eq!(name("latency", "ms", Gauge), "latency_milliseconds");
        assert_eq!(name("cache.size", "KiBy", Gauge), "cache_size_kibibytes");
        assert_eq!(name("cpu.utilization", "1", Gauge), "cpu_utilization_ratio");
        assert_eq!(
            name("cpu.utilization_ratio", "1", Gauge),
            "cpu_utilization_ratio"
        );
        // `_ratio` is for gauges only
        assert_eq!(name("hits", "1", MonotonicCounter), "hits_total");
        assert_eq!(name("queue", "1", NonMonotonicCounter), "queue");
        // annotations are dropped; `x/y` becomes `x_per_y`
        assert_eq!(
            name("system.network.dropped", "{packets}", MonotonicCounter),
            "system_network_dropped_total"
        );
        assert_eq!(
            name("net.io.rate", "By/s", Gauge),
            "net_io_rate_bytes_per_second"
        );
        assert_eq!(
            name("packets.rate", "{packet}/s", Gauge),
            "packets_rate_per_second"
        );
        assert_eq!(name("x", "By{compressed}", Gauge), "x_bytes");
        assert_eq!(
            name("throughput", "requests/min", Gauge),
            "throughput_requests_per_min"
        );
        // unit already present is not repeated
        assert_eq!(
            name("request_duration_seconds", "s", Histogram),
            "request_duration_seconds"
        );
        assert_eq!(
            name("io_bytes_per_second", "By/s", Gauge),
            "io_bytes_per_second"
        );
        // unknown units are kept, cleaned
        assert_eq!(name("temp", "deg.F", Gauge), "temp_deg_F");
        assert_eq!(name("queue.depth", "items", Summary), "queue_depth_items");
    }

    #[test]
    fn metric_names_are_sanitized() {
        use MetricKind::*;
        assert_eq!(name("my-metric..name", "", Gauge), "my_metric_name");
        assert_eq!(name("__weird__name__", "", Gauge), "weird_name");
        assert_eq!(
            name("(lambda).function.executions(#)", "", Gauge),
            "lambda_function_executions"
        );
        assert_eq!(
            name("2xx.responses", "", MonotonicCounter),
            "_2xx_responses_total"
        );
        assert_eq!(name("ns:metric", "", Gauge), "ns:metric");
        assert_eq!(name("größe", "", Gauge), "gr_e");
        assert_eq!(otlp_metric_name("", "s", Gauge), None);
        assert_eq!(otlp_metric_name("...", "", Gauge), None);
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(sanitize_label_name("http.method").unwrap(), "http_method");
        assert_eq!(sanitize_label_name("k8s.pod.name").unwrap(), "k8s_pod_name");
        assert_eq!(sanitize_label_name("1abc").unwrap(), "key_1abc");
        assert_eq!(sanitize_label_name("a..b").unwrap(), "a_b");
        assert_eq!(sanitize_label_name("__name__").unwrap(), "_name_");
        assert_eq!(sanitize_label_name("__reserved").unwrap(), "_reserved");
        assert_eq!(sanitize_label_name("_private").unwrap(), "_private");
        assert_eq!(sanitize_label_name("ünit").unwrap(), "_nit");
        assert_eq!(sanitize_label_name("."), Some("_".into()));
        assert_eq!(sanitize_label_name(""), None);
        for key in ["http.method", "1abc", "__name__", "a-b-c", "ünit", "."] {
            assert!(
                is_valid_label_name(&sanitize_label_name(key).unwrap()),
                "{key}"
            );
        }
    }

    #[test]
    fn validation_regexes() {
        assert!(is_valid_metric_name("up"));
        assert!(is_valid_metric_name("job:rate5m:sum"));
        assert!(is_valid_metric_name("_x"));
        assert!(!is_valid_metric_name(""));
        assert!(!is_valid_metric_name("1up"));
        assert!(!is_valid_metric_name("up-down"));
        assert!(is_valid_label_name("job"));
        assert!(is_valid_label_name("__address__"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("1abc"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("é"));
    }

    #[test]
    fn floats_format_like_prometheus() {
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(1000.0), "1000");
        assert_eq!(format_float(1e-5), "0.00001");
        assert_eq!(format_float(0.99), "0.99");
        assert_eq!(format_float(-0.25), "-0.25");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1.0905077326652577), "1.0905077326652577");
    }

    #[test]
    fn attribute_doubles_format_like_the_collector() {
        assert_eq!(format_attribute_double(1.5), "1.5");
        assert_eq!(format_attribute_double(3.0), "3");
        assert_eq!(format_attribute_double(1e21), "1e+21");
        assert_eq!(format_attribute_double(1e-7), "1e-7");
        assert_eq!(format_attribute_double(0.0), "0");
    }
}
