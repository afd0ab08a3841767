//! The streaming miner: masked key -> cached id, else template match, else a
//! new template; one-position differences merge templates (see the module
//! docs of [`crate::patterns`]).

use super::index::{signature, str_hash, FxMap, Head, TemplateIndex};
use super::mask::{Masked, Masker, VAR};
use super::rate::RateWindow;
use super::MinerConfig;

/// Token sequences longer than this are never generalised (keeps the per-new-
/// template work linear in practice).
const MAX_MERGE_TOKENS: usize = 128;
/// Distinct words remembered per one-position signature.
const MAX_SIGNATURE_VALUES: usize = 16;

/// What the miner says about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult<'a> {
    /// Stable id of the line's pattern (the surviving id after merges).
    pub pattern_id: u64,
    /// The pattern's current template, `<*>` for variables.
    pub template: &'a str,
    /// The line created a pattern never seen before (alert on new patterns);
    /// false when its new key was at once merged into an existing pattern.
    pub is_new: bool,
    /// Lines of this pattern so far.
    pub count: u64,
    /// Lines of this pattern in the rate window ending at this line's timestamp.
    pub window_count: u64,
}

/// A pattern as listed by [`PatternMiner::patterns`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternInfo {
    pub pattern_id: u64,
    pub template: String,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Template {
    pub id: u64,
    pub text: String,
    pub tokens: Vec<(u32, u32)>,
    pub constants: usize,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Logical time of the last line (the miner's line sequence), for LRU.
    pub last_used: u64,
    pub rate: RateWindow,
}

impl Template {
    pub fn new(id: u64, text: String) -> Self {
        let mut t = Template {
            id,
            text: String::new(),
            tokens: Vec::new(),
            constants: 0,
            count: 0,
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            last_used: 0,
            rate: RateWindow::default(),
        };
        t.set_text(text);
        t
    }

    pub fn set_text(&mut self, text: String) {
        self.tokens.clear();
        let mut pos = 0u32;
        if !text.is_empty() {
            for tok in text.split(' ') {
                let end = pos + tok.len() as u32;
                self.tokens.push((pos, end));
                pos = end + 1;
            }
        }
        self.text = text;
        self.constants = (0..self.tokens.len())
            .filter(|&i| self.tok(i) != VAR)
            .count();
    }

    pub fn tok(&self, i: usize) -> &str {
        let (s, e) = self.tokens[i];
        &self.text[s as usize..e as usize]
    }

    pub(super) fn head(&self) -> Head<'_> {
        let n = self.tokens.len();
        Head {
            len: n,
            first: if n > 0 { self.tok(0) } else { "" },
            second: if n > 1 { self.tok(1) } else { "" },
        }
    }
}

/// Online template miner. See the module documentation for the algorithm.
#[derive(Debug)]
pub struct PatternMiner {
    pub(super) cfg: MinerConfig,
    pub(super) templates: FxMap<u64, Template>,
    pub(super) index: TemplateIndex,
    pub(super) cache: FxMap<Box<str>, u64>,
    /// merged id -> surviving id (always one hop).
    pub(super) aliases: FxMap<u64, u64>,
    /// one-position signature -> (word hash, template id).
    pub(super) diffs: FxMap<u64, Vec<(u64, u64)>>,
    pub(super) next_id: u64,
    pub(super) seq: u64,
    pub(super) stats: Stats,
    masker: Masker,
    masked: Masked,
    scratch: Vec<u64>,
}

/// Counters, exported by [`PatternMiner::metrics`].
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    lines: u64,
    truncated: u64,
    created: u64,
    merged: u64,
    evicted: u64,
    cache_resets: u64,
}

impl PatternMiner {
    pub fn new(cfg: MinerConfig) -> crate::Result<Self> {
        cfg.validate()?;
        Ok(Self::empty(cfg))
    }

    pub(super) fn empty(cfg: MinerConfig) -> Self {
        PatternMiner {
            cfg,
            templates: FxMap::default(),
            index: TemplateIndex::default(),
            cache: FxMap::default(),
            aliases: FxMap::default(),
            diffs: FxMap::default(),
            next_id: 1,
            seq: 0,
            stats: Stats::default(),
            masker: Masker::default(),
            masked: Masked::default(),
            scratch: Vec::new(),
        }
    }

    pub fn config(&self) -> &MinerConfig {
        &self.cfg
    }

    /// Mines one line observed at `ts` (any monotonic unit, the same as
    /// `rate_bucket`). The id is assigned online and never revised for this
    /// line; later merges make older ids aliases, see [`Self::resolve`].
    pub fn observe(&mut self, line: &str, ts: i64) -> MatchResult<'_> {
        self.stats.lines += 1;
        self.seq += 1;
        let line = if line.len() > self.cfg.max_line_bytes {
            self.stats.truncated += 1;
            let mut n = self.cfg.max_line_bytes;
            while !line.is_char_boundary(n) {
                n -= 1;
            }
            &line[..n]
        } else {
            line
        };
        self.masker.mask(line, &mut self.masked);
        let cached = self.cache.get(self.masked.text.as_str()).copied();
        let (id, is_new) = match cached.and_then(|c| self.resolve(c).map(|r| (c, r))) {
            Some((c, r)) => {
                if c != r {
                    self.cache.insert(self.masked.text.as_str().into(), r);
                }
                (r, false)
            }
            None => self.miss(),
        };
        let seq = self.seq;
        let (bucket, n) = (self.cfg.rate_bucket, self.cfg.rate_buckets);
        let text = &self.masked.text;
        let t = self
            .templates
            .entry(id)
            .or_insert_with(|| Template::new(id, text.clone()));
        t.count += 1;
        t.last_used = seq;
        t.first_seen = t.first_seen.min(ts);
        t.last_seen = t.last_seen.max(ts);
        t.rate.add(ts, bucket, n);
        MatchResult {
            pattern_id: id,
            template: &t.text,
            is_new,
            count: t.count,
            window_count: t.rate.count(ts, bucket, n),
        }
    }

    /// [`Self::observe`] for raw bytes: invalid UTF-8 is replaced by U+FFFD.
    pub fn observe_bytes(&mut self, line: &[u8], ts: i64) -> MatchResult<'_> {
        match String::from_utf8_lossy(line) {
            std::borrow::Cow::Borrowed(s) => self.observe(s, ts),
            std::borrow::Cow::Owned(s) => self.observe(&s, ts),
        }
    }

    /// The surviving id for `id` (itself if not merged), `None` if unknown or
    /// evicted.
    pub fn resolve(&self, id: u64) -> Option<u64> {
        if self.templates.contains_key(&id) {
            return Some(id);
        }
        let to = *self.aliases.get(&id)?;
        self.templates.contains_key(&to).then_some(to)
    }

    /// Lines of pattern `id` in the rate window ending at `now`.
    pub fn window_count(&self, id: u64, now: i64) -> u64 {
        self.resolve(id)
            .and_then(|r| self.templates.get(&r))
            .map_or(0, |t| {
                t.rate
                    .count(now, self.cfg.rate_bucket, self.cfg.rate_buckets)
            })
    }

    /// `(pattern id, lines in the rate window ending at now)` for every pattern
    /// with lines in the window, busiest first (ties by id).
    pub fn window_counts(&self, now: i64) -> Vec<(u64, u64)> {
        let (b, n) = (self.cfg.rate_bucket, self.cfg.rate_buckets);
        let mut v: Vec<(u64, u64)> = self
            .templates
            .values()
            .map(|t| (t.id, t.rate.count(now, b, n)))
            .filter(|&(_, c)| c > 0)
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn pattern(&self, id: u64) -> Option<PatternInfo> {
        let t = self.templates.get(&self.resolve(id)?)?;
        Some(PatternInfo {
            pattern_id: t.id,
            template: t.text.clone(),
            count: t.count,
            first_seen: t.first_seen,
            last_seen: t.last_seen,
        })
    }

    /// All live patterns, by id.
    pub fn patterns(&self) -> Vec<PatternInfo> {
        let mut ids: Vec<u64> = self.templates.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| self.pattern(id)).collect()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Counters as `(name, value)`, names `sightline_patterns_<thing>_total`.
    pub fn metrics(&self) -> Vec<(&'static str, u64)> {
        let s = self.stats;
        vec![
            ("sightline_patterns_lines_total", s.lines),
            ("sightline_patterns_truncated_lines_total", s.truncated),
            ("sightline_patterns_created_total", s.created),
            ("sightline_patterns_merged_total", s.merged),
            ("sightline_patterns_evicted_total", s.evicted),
            ("sightline_patterns_cache_resets_total", s.cache_resets),
        ]
    }

    fn miss(&mut self) -> (u64, bool) {
        let n = self.masked.len();
        let head = Head {
            len: n,
            first: if n > 0 { self.masked.token(0) } else { "" },
            second: if n > 1 { self.masked.token(1) } else { "" },
        };
        let mut cands = std::mem::take(&mut self.scratch);
        self.index.for_key(head, &mut cands);
        let found = cands.iter().copied().find(|id| {
            self.templates
                .get(id)
                .is_some_and(|t| matches(&self.cfg, t, n, |i| self.masked.token(i)))
        });
        self.scratch = cands;
        let (id, is_new) = match found {
            Some(id) => (id, false),
            None => {
                let fresh = self.next_id;
                let id = self.create(self.masked.text.clone());
                // a key that at once merged into an older pattern is not new
                (id, id == fresh)
            }
        };
        if self.cache.len() >= self.cfg.max_cached_keys {
            self.cache.clear();
            self.stats.cache_resets += 1;
        }
        self.cache.insert(self.masked.text.as_str().into(), id);
        (id, is_new)
    }

    /// Adds a template for a new key; returns the id the key maps to after
    /// subsumption and generalisation (the new id, or an older one).
    fn create(&mut self, text: String) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.created += 1;
        let mut t = Template::new(id, text);
        t.last_used = self.seq;
        self.index.insert(id, t.head());
        self.templates.insert(id, t);
        let id = self.absorb(id);
        self.register(id);
        let id = self.resolve(id).unwrap_or(id);
        self.evict_if_full(id);
        id
    }

    /// Merges every same-bucket template that `id` subsumes into it.
    fn absorb(&mut self, mut id: u64) -> u64 {
        let Some(t) = self.templates.get(&id) else {
            return id;
        };
        if t.constants == t.tokens.len() {
            return id;
        }
        let mut bucket = Vec::new();
        self.index.for_template(t.head(), &mut bucket);
        for other in bucket {
            if other == id {
                continue;
            }
            let (Some(g), Some(o)) = (self.templates.get(&id), self.templates.get(&other)) else {
                continue;
            };
            if matches(&self.cfg, g, o.tokens.len(), |i| o.tok(i)) {
                let text = g.text.clone();
                id = self.merge(&[id, other], text);
            }
        }
        id
    }

    /// Records the template's one-position signatures; generalises the
    /// position when enough distinct words were seen there.
    fn register(&mut self, id: u64) {
        let Some(t) = self.templates.get(&id) else {
            return;
        };
        let n = t.tokens.len();
        if n < self.cfg.merge_min_tokens.max(2) || n > MAX_MERGE_TOKENS {
            return;
        }
        if self.diffs.len() + n > self.cfg.max_cached_keys {
            // bounded like the key cache: start over (merges need fresh evidence)
            self.diffs.clear();
            self.stats.cache_resets += 1;
        }
        for p in 1..n {
            let Some(t) = self.templates.get(&id) else {
                return;
            };
            let word = t.tok(p);
            if word == VAR || t.constants - 1 < self.cfg.merge_min_constants {
                continue;
            }
            let sig = signature(n, p, (0..n).map(|i| t.tok(i)));
            let wh = str_hash(word);
            let entry = self.diffs.entry(sig).or_default();
            if let Some(pos) = entry.iter().position(|e| e.0 == wh) {
                entry[pos].1 = id;
            } else if entry.len() < MAX_SIGNATURE_VALUES {
                entry.push((wh, id));
            } else if let Some(last) = entry.last_mut() {
                *last = (wh, id);
            }
            if entry.len() < self.cfg.merge_min_distinct {
                continue;
            }
            let members: Vec<u64> = entry.iter().map(|e| e.1).collect();
            let mut ids: Vec<u64> = members
                .into_iter()
                .filter_map(|m| self.resolve(m))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut text = String::with_capacity(t.text.len());
            for i in 0..n {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(if i == p { VAR } else { t.tok(i) });
            }
            let keep = self.merge(&ids, text);
            let keep = self.absorb(keep);
            if let Some(keep) = self.resolve(keep) {
                self.register(keep);
            }
            return;
        }
    }

    /// Merges `ids` into the oldest one, which gets `text`; returns its id.
    fn merge(&mut self, ids: &[u64], text: String) -> u64 {
        let Some(&keep) = ids.iter().min() else {
            return 0;
        };
        let n = self.cfg.rate_buckets;
        for &drop in ids {
            if drop == keep {
                continue;
            }
            let Some(d) = self.templates.remove(&drop) else {
                continue;
            };
            self.unlink(&d);
            self.stats.merged += 1;
            for to in self.aliases.values_mut() {
                if *to == drop {
                    *to = keep;
                }
            }
            self.aliases.insert(drop, keep);
            if let Some(k) = self.templates.get_mut(&keep) {
                k.count += d.count;
                k.first_seen = k.first_seen.min(d.first_seen);
                k.last_seen = k.last_seen.max(d.last_seen);
                k.last_used = k.last_used.max(d.last_used);
                k.rate.absorb(&d.rate, n);
            }
        }
        if let Some(k) = self.templates.get_mut(&keep) {
            // the second token may become <*>: list the template again
            self.index.remove(keep, k.head());
            k.set_text(text);
            self.index.insert(keep, k.head());
        }
        self.trim_aliases();
        keep
    }

    fn unlink(&mut self, t: &Template) {
        self.index.remove(t.id, t.head());
    }

    fn trim_aliases(&mut self) {
        let cap = self.cfg.max_templates.saturating_mul(4).max(16);
        if self.aliases.len() <= cap {
            return;
        }
        let mut ids: Vec<u64> = self.aliases.keys().copied().collect();
        ids.sort_unstable();
        for id in &ids[..ids.len() - cap / 2] {
            self.aliases.remove(id);
        }
    }

    /// Evicts the least recently used tenth of the templates when over the cap
    /// (never `keep`, the template of the current line).
    fn evict_if_full(&mut self, keep: u64) {
        let cap = self.cfg.max_templates;
        if self.templates.len() <= cap {
            return;
        }
        let target = cap - cap / 10;
        let mut order: Vec<(u64, u64)> = self
            .templates
            .values()
            .filter(|t| t.id != keep)
            .map(|t| (t.last_used, t.id))
            .collect();
        order.sort_unstable();
        let excess = self.templates.len().saturating_sub(target.max(1));
        for &(_, id) in order.iter().take(excess) {
            if let Some(t) = self.templates.remove(&id) {
                self.unlink(&t);
                self.stats.evicted += 1;
            }
        }
        // aliases to evicted ids resolve to nothing; drop them
        let templates = &self.templates;
        self.aliases.retain(|_, to| templates.contains_key(to));
    }
}

/// Whether template `t` takes a key of `len` tokens given by `key(i)`: equal
/// tokens, or a `<*>` in the template against a `<*>` in the key — or, for a
/// template long and specific enough and with the same first token, against a
/// word (so `device lo` joins `device <*>`).
fn matches<'k>(
    cfg: &MinerConfig,
    t: &Template,
    len: usize,
    key: impl Fn(usize) -> &'k str,
) -> bool {
    if t.tokens.len() != len {
        return false;
    }
    let mut exact = true;
    for i in 0..len {
        let (a, b) = (t.tok(i), key(i));
        if a == b {
            continue;
        }
        if a == VAR && b.chars().any(char::is_alphabetic) {
            exact = false;
            continue;
        }
        return false;
    }
    exact
        || (len >= cfg.merge_min_tokens
            && t.tok(0) == key(0)
            && t.constants >= cfg.merge_min_constants)
}
