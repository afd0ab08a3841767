//! LogQL tokens: the lexer turns a query string into [`Token`]s with their byte
//! offsets, which the parser (`parser.rs`) consumes. Numbers followed by a unit
//! become durations (`5m`, `1h30m`, `250ms`) or byte sizes (`10KB`, `1MiB`).

use super::Error;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    /// Nanoseconds.
    Duration(i64),
    /// Bytes.
    Bytes(f64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `==`
    EqEq,
    Neq,
    Re,
    Nre,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    Pipe,
    Gt,
    Gte,
    Lt,
    Lte,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Tokenizes `input`; every token carries its byte offset for error messages.
pub fn lex(input: &str) -> Result<Vec<Token>, Error> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let pos = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // comment to end of line
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = |s: &str| input[i..].starts_with(s);
        let (tok, len) = if two("|=") {
            (Tok::PipeExact, 2)
        } else if two("|~") {
            (Tok::PipeMatch, 2)
        } else if two("!=") {
            (Tok::Neq, 2)
        } else if two("!~") {
            (Tok::Nre, 2)
        } else if two("=~") {
            (Tok::Re, 2)
        } else if two("==") {
            (Tok::EqEq, 2)
        } else if two(">=") {
            (Tok::Gte, 2)
        } else if two("<=") {
            (Tok::Lte, 2)
        } else {
            match c {
                b'{' => (Tok::LBrace, 1),
                b'}' => (Tok::RBrace, 1),
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b'[' => (Tok::LBracket, 1),
                b']' => (Tok::RBracket, 1),
                b',' => (Tok::Comma, 1),
                b'=' => (Tok::Eq, 1),
                b'|' => (Tok::Pipe, 1),
                b'>' => (Tok::Gt, 1),
                b'<' => (Tok::Lt, 1),
                b'+' => (Tok::Plus, 1),
                b'-' if !matches!(b.get(i + 1), Some(b'-')) => (Tok::Minus, 1),
                b'*' => (Tok::Star, 1),
                b'/' => (Tok::Slash, 1),
                b'%' => (Tok::Percent, 1),
                b'^' => (Tok::Caret, 1),
                b'"' => {
                    let (s, n) = lex_quoted(input, i)?;
                    (Tok::Str(s), n)
                }
                b'`' => match input[i + 1..].find('`') {
                    Some(end) => (Tok::Str(input[i + 1..i + 1 + end].to_string()), end + 2),
                    None => return Err(Error::parse(pos, "unterminated raw string")),
                },
                b'0'..=b'9' | b'.' => lex_number(input, i)?,
                c if c.is_ascii_alphabetic() || c == b'_' || (c == b'-' && two("--")) => {
                    // flags such as `--strict` keep their leading dashes
                    let mut j = if c == b'-' { i + 2 } else { i };
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    (Tok::Ident(input[i..j].to_string()), j - i)
                }
                _ => {
                    let ch = input[i..].chars().next().unwrap_or('?');
                    return Err(Error::parse(pos, format!("unexpected character {ch:?}")));
                }
            }
        };
        out.push(Token { tok, pos });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(out)
}

/// A double-quoted string with Go escapes; returns the value and the bytes consumed.
fn lex_quoted(input: &str, start: usize) -> Result<(String, usize), Error> {
    let mut out = String::new();
    let mut chars = input[start + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((out, k + 2)),
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| Error::parse(start, "unterminated string"))?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'u' | 'x' => {
                        let n = if e == 'u' { 4 } else { 2 };
                        let hex: String = (0..n).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| Error::parse(start + k, "invalid escape in string"))?;
                        out.push(ch);
                    }
                    other => {
                        return Err(Error::parse(
                            start + k + 1,
                            format!("invalid escape \\{other} in string (write \\\\{other} for a backslash)"),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(Error::parse(start, "unterminated string"))
}

fn lex_number(input: &str, start: usize) -> Result<(Tok, usize), Error> {
    let b = input.as_bytes();
    let mut j = start;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'.') {
        j += 1;
    }
    let text = &input[start..j];
    if let Ok(f) = text.parse::<f64>() {
        return Ok((Tok::Num(f), j - start));
    }
    if let Some(ns) = parse_duration_ns(text) {
        return Ok((Tok::Duration(ns), j - start));
    }
    if let Some(bytes) = parse_bytes(text) {
        return Ok((Tok::Bytes(bytes), j - start));
    }
    Err(Error::parse(
        start,
        format!("invalid number, duration or size {text:?}"),
    ))
}

/// Go/Prometheus durations: `1h30m`, `250ms`, `1.5s`, `2d`, to nanoseconds.
pub fn parse_duration_ns(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult: f64 = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    (total.is_finite() && total.abs() < i64::MAX as f64).then_some(total as i64)
}

/// Humanized byte sizes as Loki reads them: `10KB` = 10,000, `1KiB` = 1,024, `5B`.
pub fn parse_bytes(s: &str) -> Option<f64> {
    let n_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let n: f64 = s[..n_end].parse().ok()?;
    let mult = match s[n_end..].to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "pb" | "p" => 1e15,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "ti" => 1024f64.powi(4),
        "pib" | "pi" => 1024f64.powi(5),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks(r#"{a="b"} |= "x\"y" != `c\d` |~ "e" !~ "f" | g >= 10ms"#),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Eq,
                Tok::Str("b".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("x\"y".into()),
                Tok::Neq,
                Tok::Str("c\\d".into()),
                Tok::PipeMatch,
                Tok::Str("e".into()),
                Tok::Nre,
                Tok::Str("f".into()),
                Tok::Pipe,
                Tok::Ident("g".into()),
                Tok::Gte,
                Tok::Duration(10_000_000),
                Tok::Eof
            ]
        );
        assert_eq!(toks("1h30m")[0], Tok::Duration(5_400_000_000_000));
        assert_eq!(toks("1.5")[0], Tok::Num(1.5));
        assert_eq!(toks("10KB")[0], Tok::Bytes(10_000.0));
        assert_eq!(toks("2KiB")[0], Tok::Bytes(2048.0));
        assert_eq!(toks("--strict")[0], Tok::Ident("--strict".into()));
        assert_eq!(toks("a # comment\nb").len(), 3);
    }

    #[test]
    fn errors_have_positions() {
        let q = r#"{a="b}"#;
        let e = lex(q).unwrap_err().locate(q).to_string();
        assert!(e.contains("unterminated string"), "{e}");
        assert!(e.contains("col 4"), "{e}");
        assert!(lex("{a=1x}").is_err());
        assert!(lex(r#""\q""#).is_err());
        assert!(lex("a ; b").is_err());
    }
}
