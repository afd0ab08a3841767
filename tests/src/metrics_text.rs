//! Reading a process's own `/metrics` (Prometheus text format 0.0.4) to assert that
//! its counters moved.

use std::collections::BTreeMap;

use crate::http_api::{Http, Labels};

/// One sample line of the exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct TextSample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// A scrape of `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub samples: Vec<TextSample>,
}

impl Scrape {
    /// GET `/metrics` from `http` (must answer 200) and parse it.
    pub fn fetch(http: &Http) -> Scrape {
        let reply = http.get_ok("/metrics", &[]);
        assert_eq!(reply.status, 200, "/metrics: {}", reply.body);
        Scrape::parse(&reply.body)
    }

    pub fn parse(text: &str) -> Scrape {
        Scrape {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// Sum of `name` over the samples whose labels include all of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && filter
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// `name` by the value of label `by`.
    pub fn by_label(&self, name: &str, by: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == name) {
            *out.entry(s.labels.get(by).cloned().unwrap_or_default())
                .or_insert(0.0) += s.value;
        }
        out
    }

    /// Names of all samples.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.samples.iter().map(|s| s.name.clone()).collect();
        names.dedup();
        names
    }
}

/// The reasons of `rejected_total` that grew between `before` and `after`, with the increase.
pub fn rejected_increase(before: &Scrape, after: &Scrape) -> BTreeMap<String, f64> {
    const NAME: &str = "sightline_collector_rejected_total";
    let b = before.by_label(NAME, "reason");
    after
        .by_label(NAME, "reason")
        .into_iter()
        .filter_map(|(reason, v)| {
            let inc = v - b.get(&reason).copied().unwrap_or(0.0);
            (inc > 0.0).then_some((reason, inc))
        })
        .collect()
}

fn parse_line(line: &str) -> Option<TextSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = Labels::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // label name
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => return None,
                    },
                    '"' => break,
                    _ => value.push(c),
                }
            }
            labels.insert(key.trim().to_string(), value);
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(TextSample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition_lines() {
        let s = Scrape::parse(
            "# HELP x y\n# TYPE sightline_collector_rejected_total counter\n\
             sightline_collector_rejected_total{reason=\"out_of_order\",signal=\"metrics\"} 3\n\
             sightline_collector_rejected_total{reason=\"a \\\"q\\\" b\"} 1.5\n\
             up 1 1700000000000\nempty{} 2\n",
        );
        assert_eq!(s.sum("sightline_collector_rejected_total", &[]), 4.5);
        assert_eq!(
            s.sum(
                "sightline_collector_rejected_total",
                &[("reason", "out_of_order")]
            ),
            3.0
        );
        assert_eq!(
            s.by_label("sightline_collector_rejected_total", "reason")["a \"q\" b"],
            1.5
        );
        assert_eq!(s.sum("up", &[]), 1.0);
        assert_eq!(s.sum("empty", &[]), 2.0);
    }
}
