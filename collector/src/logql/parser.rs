//! Recursive-descent LogQL parser: tokens from `lexer.rs` to the tree in `ast.rs`.
//!
//! Grammar (the Loki 3 subset the collector runs):
//! ```text
//! query      = log | metric
//! log        = "{" matcher ("," matcher)* "}" stage*
//! stage      = ("|=" | "!=" | "|~" | "!~") string ("or" string)*
//!            | "|" ("json" params? | "logfmt" flags params? | "regexp" string
//!                  | "line_format" string | "label_format" fmt ("," fmt)*
//!                  | "drop" names | "keep" names | "decolorize" | label_filter)
//! label_filter = and ("or" and)* ; and = unary (("and" | ",") unary)*
//! unary      = "(" label_filter ")" | name op (string | number | duration | bytes)
//! metric     = binary expression over: number | "(" metric ")"
//!            | range_fn "(" [number ","] log_range ")" grouping?
//!            | vector_op grouping? "(" [number ","] metric ")" grouping?
//! log_range  = log "[" duration "]" stage* ["offset" duration] (unwrap inside stages)
//! ```

use sightline_store::{MatchOp, Matcher};

use super::ast::*;
use super::lexer::{lex, Tok, Token};
use super::template::Template;
use super::{Error, Result};

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr> {
    let run = || -> Result<Expr> {
        let toks = lex(input)?;
        let mut p = Parser { toks, i: 0 };
        let e = p.query()?;
        p.expect(&Tok::Eof, "end of query")?;
        Ok(e)
    };
    run().map_err(|e| e.locate(input))
}

/// Parses a bare stream selector (`{a="b"}`), as `/series` and `/labels` take.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>> {
    match parse(input)? {
        Expr::Log(l) if l.stages.is_empty() => Ok(l.matchers),
        Expr::Log(_) => Err(Error::Invalid(format!(
            "only a stream selector such as {{app=\"x\"}} is allowed here, without a pipeline: {input}"
        ))),
        Expr::Metric(_) => Err(Error::Invalid(format!(
            "expected a stream selector such as {{app=\"x\"}}, got a metric query: {input}"
        ))),
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s:?}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Duration(_) => "duration".into(),
        Tok::Bytes(_) => "byte size".into(),
        Tok::Eof => "end of query".into(),
        other => format!("{other:?}"),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].tok
    }
    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn err<T>(&self, what: &str) -> Result<T> {
        Err(Error::parse(
            self.pos(),
            format!(
                "syntax error: unexpected {}, expecting {what}",
                describe(self.peek())
            ),
        ))
    }
    fn expect(&mut self, t: &Tok, what: &str) -> Result<()> {
        if self.peek() == t {
            self.next();
            Ok(())
        } else {
            self.err(what)
        }
    }
    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == name)
    }
    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => self.err(what),
        }
    }
    fn string(&mut self, what: &str) -> Result<(String, usize)> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok((s, pos))
            }
            _ => self.err(what),
        }
    }
    fn duration(&mut self) -> Result<i64> {
        match self.peek().clone() {
            Tok::Duration(d) if d > 0 => {
                self.next();
                Ok(d)
            }
            _ => self.err("a positive duration such as 5m"),
        }
    }

    fn query(&mut self) -> Result<Expr> {
        if *self.peek() == Tok::LBrace {
            let log = self.log_expr()?;
            if *self.peek() == Tok::LBracket {
                return Err(Error::parse(
                    self.pos(),
                    "syntax error: a range [..] needs a function such as count_over_time(...)",
                ));
            }
            return Ok(Expr::Log(log));
        }
        Ok(Expr::Metric(self.binary(0)?))
    }

    fn matcher(&mut self) -> Result<Matcher> {
        let pos = self.pos();
        let name = self.ident("label name")?;
        let op = match self.next() {
            Tok::Eq => MatchOp::Equal,
            Tok::Neq => MatchOp::NotEqual,
            Tok::Re => MatchOp::RegexMatch,
            Tok::Nre => MatchOp::RegexNoMatch,
            _ => {
                self.i -= 1;
                return self.err("=, !=, =~ or !~");
            }
        };
        let (value, _) = self.string("a quoted label value")?;
        Matcher::new(name, op, value).map_err(|e| Error::parse(pos, e.to_string()))
    }

    fn log_expr(&mut self) -> Result<LogExpr> {
        let pos = self.pos();
        self.expect(&Tok::LBrace, "{")?;
        let mut matchers = Vec::new();
        while *self.peek() != Tok::RBrace {
            matchers.push(self.matcher()?);
            if *self.peek() == Tok::Comma {
                self.next();
            } else if *self.peek() != Tok::RBrace {
                return self.err(", or }");
            }
        }
        self.next();
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(Error::parse(
                pos,
                "queries require at least one regexp or equality matcher that does not have an \
                 empty-compatible value. For instance, app=~\".*\" does not meet this requirement, \
                 but app=~\".+\" will",
            ));
        }
        let stages = self.stages()?;
        Ok(LogExpr { matchers, stages })
    }

    /// Stages until something that is not a stage; an `unwrap` ends the list.
    fn stages(&mut self) -> Result<Vec<Stage>> {
        let mut out = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::PipeExact => FilterOp::Contains,
                Tok::Neq => FilterOp::NotContains,
                Tok::PipeMatch => FilterOp::Match,
                Tok::Nre => FilterOp::NotMatch,
                Tok::Pipe if matches!(self.peek_at(1), Tok::Ident(s) if s == "unwrap") => {
                    return Ok(out)
                }
                Tok::Pipe => {
                    self.next();
                    out.push(self.stage()?);
                    continue;
                }
                _ => return Ok(out),
            };
            self.next();
            out.push(Stage::LineFilter(self.line_filter(op)?));
        }
    }

    fn line_filter(&mut self, op: FilterOp) -> Result<LineFilter> {
        let mut needles = vec![self.string("a quoted string after the line filter")?];
        while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
            self.next();
            needles.push(self.string("string")?);
        }
        let mut regexes = Vec::new();
        if matches!(op, FilterOp::Match | FilterOp::NotMatch) {
            for (n, pos) in &needles {
                regexes.push(
                    regex::Regex::new(n)
                        .map_err(|e| Error::parse(*pos, format!("invalid regex {n:?}: {e}")))?,
                );
            }
        }
        Ok(LineFilter {
            op,
            needles: needles.into_iter().map(|(n, _)| n).collect(),
            regexes,
        })
    }

    fn stage(&mut self) -> Result<Stage> {
        let word = match self.peek() {
            Tok::Ident(s) => s.clone(),
            Tok::LParen => return Ok(Stage::LabelFilter(self.label_filter()?)),
            _ => return self.err("a parser, formatter or label filter after |"),
        };
        // a name followed by a comparison is a label filter (`| json="x"` included)
        let is_filter = matches!(
            self.peek_at(1),
            Tok::Eq
                | Tok::Neq
                | Tok::Re
                | Tok::Nre
                | Tok::Gt
                | Tok::Gte
                | Tok::Lt
                | Tok::Lte
                | Tok::EqEq
        );
        if is_filter {
            return Ok(Stage::LabelFilter(self.label_filter()?));
        }
        let pos = self.pos();
        self.next();
        Ok(match word.as_str() {
            "json" => Stage::Json(self.extraction_params()?),
            "logfmt" => {
                while matches!(self.peek(), Tok::Ident(f) if f.starts_with("--")) {
                    let f = self.ident("flag")?;
                    if f != "--strict" && f != "--keep-empty" {
                        return Err(Error::parse(pos, format!("unknown logfmt flag {f}")));
                    }
                }
                if !self.extraction_params()?.is_empty() {
                    return Err(Error::parse(
                        pos,
                        "logfmt with parameters is not supported; use | logfmt | keep ...",
                    ));
                }
                Stage::Logfmt
            }
            "regexp" => {
                let (re, rpos) = self.string("a quoted regular expression")?;
                let r = regex::Regex::new(&re)
                    .map_err(|e| Error::parse(rpos, format!("invalid regex {re:?}: {e}")))?;
                if r.capture_names().flatten().next().is_none() {
                    return Err(Error::parse(
                        rpos,
                        "regexp needs at least one named capture (?P<name>...)",
                    ));
                }
                Stage::Regexp(r)
            }
            "line_format" => {
                let (t, tpos) = self.string("a quoted template")?;
                Stage::LineFormat(Template::parse(&t, tpos)?)
            }
            "label_format" => {
                let mut fmts = Vec::new();
                loop {
                    let dst = self.ident("label name")?;
                    self.expect(&Tok::Eq, "=")?;
                    match self.peek().clone() {
                        Tok::Ident(src) => {
                            self.next();
                            fmts.push(LabelFmt::Rename { dst, src });
                        }
                        Tok::Str(_) => {
                            let (t, tpos) = self.string("template")?;
                            let tmpl = Template::parse(&t, tpos)?;
                            fmts.push(LabelFmt::Template { dst, tmpl });
                        }
                        _ => return self.err("a label name or a quoted template"),
                    }
                    if *self.peek() != Tok::Comma {
                        break;
                    }
                    self.next();
                }
                Stage::LabelFormat(fmts)
            }
            "drop" => Stage::Drop(self.names()?),
            "keep" => Stage::Keep(self.names()?),
            "decolorize" => Stage::Decolorize,
            "pattern" | "unpack" => {
                return Err(Error::parse(
                    pos,
                    format!("the {word} parser is not supported"),
                ))
            }
            _ => {
                self.i -= 1;
                return self.err("a parser (json, logfmt, regexp), formatter or label filter");
            }
        })
    }

    /// `a="x.y", b` after `json`.
    fn extraction_params(&mut self) -> Result<Vec<(String, Vec<String>)>> {
        let mut out = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            if name == "or" || name == "offset" {
                break;
            }
            self.next();
            let path = if *self.peek() == Tok::Eq {
                self.next();
                let (p, ppos) = self.string("a quoted JSON path")?;
                json_path(&p)
                    .ok_or_else(|| Error::parse(ppos, format!("invalid JSON path {p:?}")))?
            } else {
                vec![name.clone()]
            };
            out.push((name, path));
            if *self.peek() != Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(out)
    }

    fn names(&mut self) -> Result<Vec<NameMatch>> {
        let mut out = Vec::new();
        loop {
            let pos = self.pos();
            let name = self.ident("label name")?;
            let op = match self.peek() {
                Tok::Eq => Some(MatchOp::Equal),
                Tok::Neq => Some(MatchOp::NotEqual),
                Tok::Re => Some(MatchOp::RegexMatch),
                Tok::Nre => Some(MatchOp::RegexNoMatch),
                _ => None,
            };
            let matcher = match op {
                Some(op) => {
                    self.next();
                    let (v, _) = self.string("quoted value")?;
                    Some(
                        Matcher::new(name.clone(), op, v)
                            .map_err(|e| Error::parse(pos, e.to_string()))?,
                    )
                }
                None => None,
            };
            out.push(NameMatch { name, matcher });
            if *self.peek() != Tok::Comma {
                return Ok(out);
            }
            self.next();
        }
    }

    fn label_filter(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_unary()?;
        while self.is_ident("and") || *self.peek() == Tok::Comma {
            self.next();
            let rhs = self.label_filter_unary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_unary(&mut self) -> Result<LabelFilter> {
        if *self.peek() == Tok::LParen {
            self.next();
            let f = self.label_filter()?;
            self.expect(&Tok::RParen, ")")?;
            return Ok(f);
        }
        let pos = self.pos();
        let name = self.ident("label name")?;
        let op_tok = self.next();
        let value = self.next();
        let cmp = match op_tok {
            Tok::Eq | Tok::EqEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Ne,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Le,
            Tok::Re | Tok::Nre => CmpOp::Eq,
            _ => {
                self.i -= 2;
                self.next();
                return self.err("a comparison operator");
            }
        };
        let num = |value: f64, conv| LabelFilter::Num {
            name: name.clone(),
            op: cmp,
            value,
            conv,
        };
        match (op_tok, value) {
            (op @ (Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre), Tok::Str(v)) => {
                let mop = match op {
                    Tok::Eq => MatchOp::Equal,
                    Tok::Neq => MatchOp::NotEqual,
                    Tok::Re => MatchOp::RegexMatch,
                    _ => MatchOp::RegexNoMatch,
                };
                Ok(LabelFilter::Str(
                    Matcher::new(name, mop, v).map_err(|e| Error::parse(pos, e.to_string()))?,
                ))
            }
            (Tok::Re | Tok::Nre, _) => {
                self.i -= 1;
                self.err("a quoted regular expression")
            }
            (_, Tok::Num(v)) => Ok(num(v, Conversion::Number)),
            (_, Tok::Duration(ns)) => Ok(num(ns as f64 / 1e9, Conversion::Duration)),
            (_, Tok::Bytes(b)) => Ok(num(b, Conversion::Bytes)),
            _ => {
                self.i -= 1;
                self.err("a quoted string, number, duration or byte size")
            }
        }
    }

    fn unwrap(&mut self) -> Result<Unwrap> {
        self.expect(&Tok::Pipe, "|")?;
        self.ident("unwrap")?;
        let first = self.ident("label name after unwrap")?;
        let (label, conv) = match first.as_str() {
            "duration" | "duration_seconds" | "bytes" if *self.peek() == Tok::LParen => {
                self.next();
                let l = self.ident("label name")?;
                self.expect(&Tok::RParen, ")")?;
                let conv = if first == "bytes" {
                    Conversion::Bytes
                } else {
                    Conversion::Duration
                };
                (l, conv)
            }
            _ => (first, Conversion::Number),
        };
        let mut post_filters = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.next();
            post_filters.push(self.label_filter()?);
        }
        Ok(Unwrap {
            label,
            conv,
            post_filters,
        })
    }

    fn grouping(&mut self) -> Result<Option<Grouping>> {
        let without = match self.peek() {
            Tok::Ident(s) if s == "by" => false,
            Tok::Ident(s) if s == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        self.expect(&Tok::LParen, "(")?;
        let mut labels = Vec::new();
        while *self.peek() != Tok::RParen {
            labels.push(self.ident("label name")?);
            if *self.peek() == Tok::Comma {
                self.next();
            } else if *self.peek() != Tok::RParen {
                return self.err(", or )");
            }
        }
        self.next();
        Ok(Some(Grouping { without, labels }))
    }

    fn binary(&mut self, min_prec: u8) -> Result<MetricExpr> {
        let mut lhs = self.unary()?;
        loop {
            let Some((op, prec)) = self.bin_op() else {
                return Ok(lhs);
            };
            if prec < min_prec {
                return Ok(lhs);
            }
            self.next();
            let bool_modifier = self.is_ident("bool");
            if bool_modifier {
                self.next();
            }
            if self.is_ident("on") || self.is_ident("ignoring") {
                return Err(Error::parse(
                    self.pos(),
                    "vector matching with on/ignoring is not supported",
                ));
            }
            // ^ is right-associative
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.binary(next_min)?;
            lhs = MetricExpr::Binary {
                op,
                bool_modifier,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn bin_op(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            Tok::Ident(s) if s == "or" => (BinOp::Or, 1),
            Tok::Ident(s) if s == "and" => (BinOp::And, 2),
            Tok::Ident(s) if s == "unless" => (BinOp::Unless, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::Neq => (BinOp::Ne, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Gte => (BinOp::Ge, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Lte => (BinOp::Le, 3),
            Tok::Plus => (BinOp::Add, 4),
            Tok::Minus => (BinOp::Sub, 4),
            Tok::Star => (BinOp::Mul, 5),
            Tok::Slash => (BinOp::Div, 5),
            Tok::Percent => (BinOp::Mod, 5),
            Tok::Caret => (BinOp::Pow, 6),
            _ => return None,
        })
    }

    fn unary(&mut self) -> Result<MetricExpr> {
        match self.peek().clone() {
            Tok::Minus => {
                self.next();
                let e = self.binary(6)?;
                Ok(match e {
                    MetricExpr::Number(n) => MetricExpr::Number(-n),
                    e => MetricExpr::Binary {
                        op: BinOp::Mul,
                        bool_modifier: false,
                        lhs: Box::new(MetricExpr::Number(-1.0)),
                        rhs: Box::new(e),
                    },
                })
            }
            Tok::Plus => {
                self.next();
                self.binary(6)
            }
            Tok::Num(n) => {
                self.next();
                Ok(MetricExpr::Number(n))
            }
            Tok::LParen => {
                self.next();
                let e = self.binary(0)?;
                self.expect(&Tok::RParen, ")")?;
                Ok(e)
            }
            Tok::LBrace => Err(Error::parse(
                self.pos(),
                "syntax error: a log query cannot be used in a metric expression; wrap it in a \
                 range function such as count_over_time({...}[5m])",
            )),
            Tok::Ident(name) if name == "vector" => {
                self.next();
                self.expect(&Tok::LParen, "(")?;
                let v = match self.next() {
                    Tok::Num(n) => n,
                    _ => {
                        self.i -= 1;
                        return self.err("a number");
                    }
                };
                self.expect(&Tok::RParen, ")")?;
                Ok(MetricExpr::VectorLit(v))
            }
            Tok::Ident(name) => {
                if let Some(f) = range_fn(&name) {
                    self.next();
                    self.range_agg(f)
                } else if let Some(op) = vec_op(&name) {
                    self.next();
                    self.vector_agg(op)
                } else {
                    Err(Error::parse(
                        self.pos(),
                        format!("syntax error: unknown function {name:?}"),
                    ))
                }
            }
            _ => self.err("a metric expression"),
        }
    }

    fn range_agg(&mut self, func: RangeFn) -> Result<MetricExpr> {
        let pos = self.pos();
        self.expect(&Tok::LParen, "(")?;
        let param = if func == RangeFn::QuantileOverTime {
            let p = match self.next() {
                Tok::Num(n) => n,
                _ => {
                    self.i -= 1;
                    return self.err("the quantile as a number");
                }
            };
            self.expect(&Tok::Comma, ",")?;
            Some(p)
        } else {
            None
        };
        let parens = *self.peek() == Tok::LParen;
        if parens {
            self.next();
        }
        let mut log = self.log_expr()?;
        let mut unwrap = if *self.peek() == Tok::Pipe {
            Some(self.unwrap()?)
        } else {
            None
        };
        if parens {
            self.expect(&Tok::RParen, ")")?;
        }
        self.expect(&Tok::LBracket, "[ with a range such as [5m]")?;
        let range_ns = self.duration()?;
        self.expect(&Tok::RBracket, "]")?;
        if unwrap.is_none() {
            log.stages.extend(self.stages()?);
            if *self.peek() == Tok::Pipe {
                unwrap = Some(self.unwrap()?);
            }
        }
        let offset_ns = if self.is_ident("offset") {
            self.next();
            self.duration()?
        } else {
            0
        };
        self.expect(&Tok::RParen, ")")?;
        let grouping = self.grouping()?;
        let func = match (func, &unwrap) {
            (RangeFn::Rate, Some(_)) => RangeFn::RateUnwrapped,
            (f, None) if f.needs_unwrap() => {
                return Err(Error::parse(
                    pos,
                    format!("{f:?} needs an unwrapped label: | unwrap name"),
                ))
            }
            (f, Some(_)) if !f.needs_unwrap() => {
                return Err(Error::parse(
                    pos,
                    format!("{f:?} cannot be used with unwrap"),
                ))
            }
            (f, _) => f,
        };
        if grouping.is_some() && !func.needs_unwrap() {
            return Err(Error::parse(
                pos,
                "grouping is only allowed on unwrapped range aggregations",
            ));
        }
        Ok(MetricExpr::Range {
            func,
            log,
            range_ns,
            offset_ns,
            unwrap,
            param,
            grouping,
        })
    }

    fn vector_agg(&mut self, op: VecOp) -> Result<MetricExpr> {
        let mut grouping = self.grouping()?;
        self.expect(&Tok::LParen, "(")?;
        let param = if matches!(op, VecOp::Topk | VecOp::Bottomk) {
            let k = match self.next() {
                Tok::Num(n) if n >= 1.0 && n.fract() == 0.0 => n,
                _ => {
                    self.i -= 1;
                    return self.err("k as a positive integer");
                }
            };
            self.expect(&Tok::Comma, ",")?;
            Some(k)
        } else {
            None
        };
        let inner = self.binary(0)?;
        self.expect(&Tok::RParen, ")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Vector {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        })
    }
}

fn range_fn(name: &str) -> Option<RangeFn> {
    Some(match name {
        "count_over_time" => RangeFn::CountOverTime,
        "rate" => RangeFn::Rate,
        "bytes_over_time" => RangeFn::BytesOverTime,
        "bytes_rate" => RangeFn::BytesRate,
        "sum_over_time" => RangeFn::SumOverTime,
        "avg_over_time" => RangeFn::AvgOverTime,
        "max_over_time" => RangeFn::MaxOverTime,
        "min_over_time" => RangeFn::MinOverTime,
        "first_over_time" => RangeFn::FirstOverTime,
        "last_over_time" => RangeFn::LastOverTime,
        "stddev_over_time" => RangeFn::StddevOverTime,
        "stdvar_over_time" => RangeFn::StdvarOverTime,
        "quantile_over_time" => RangeFn::QuantileOverTime,
        "absent_over_time" => RangeFn::AbsentOverTime,
        _ => return None,
    })
}

fn vec_op(name: &str) -> Option<VecOp> {
    Some(match name {
        "sum" => VecOp::Sum,
        "avg" => VecOp::Avg,
        "max" => VecOp::Max,
        "min" => VecOp::Min,
        "count" => VecOp::Count,
        "stddev" => VecOp::Stddev,
        "stdvar" => VecOp::Stdvar,
        "topk" => VecOp::Topk,
        "bottomk" => VecOp::Bottomk,
        _ => return None,
    })
}

/// `a.b[0]` / `a["b"]` paths of `| json x="a.b"`; array indexes are unsupported.
fn json_path(p: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for part in p.split('.') {
        if let Some((head, rest)) = part.split_once('[') {
            if !head.is_empty() {
                out.push(head.to_string());
            }
            let key = rest.strip_suffix(']')?.trim_matches('"');
            if key.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            out.push(key.to_string());
        } else if part.is_empty() {
            return None;
        } else {
            out.push(part.to_string());
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
