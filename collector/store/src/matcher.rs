//! Label matchers as in PromQL selectors: `=`, `!=`, `=~`, `!~`. Regexes are fully
//! anchored, and a label that is absent matches as the empty string (Prometheus rules).

use crate::model::Labels;
use crate::{Error, Result};
use regex::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; a regex that does not compile is [`Error::BadMatcher`].
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(
                Regex::new(&format!("^(?s:{value})$"))
                    .map_err(|e| Error::BadMatcher(format!("{name}=~{value:?}: {e}")))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Matches one label value (`""` for an absent label).
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            // constructed only through `new`, which always sets the regex for these ops
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => false,
        }
    }

    /// Matches a label set.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher also matches the empty string (so it cannot select on its own).
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// True when every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_absent_is_empty() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert!(Matcher::new("job", MatchOp::RegexMatch, "no.*")
            .unwrap()
            .matches(&l));
        assert!(!Matcher::new("job", MatchOp::RegexMatch, "no")
            .unwrap()
            .matches(&l));
        assert!(Matcher::new("missing", MatchOp::Equal, "")
            .unwrap()
            .matches(&l));
        assert!(!Matcher::new("missing", MatchOp::NotEqual, "")
            .unwrap()
            .matches(&l));
        assert!(Matcher::new("x", MatchOp::RegexMatch, "(").is_err());
    }
}
