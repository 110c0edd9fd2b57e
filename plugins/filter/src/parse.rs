//! Parse a predicate: a conjunction (`and`) of simple conditions on one column each.
//!
//! ```text
//! predicate := cond ( AND cond )*
//! cond      := col op literal | col [NOT] BETWEEN literal AND literal
//!            | col IS [NOT] NULL | col [NOT] IN ( literal, ... )
//! op        := = | == | != | <> | < | <= | > | >=
//! literal   := number | 'string' | DATE 'YYYY-MM-DD' | TIMESTAMP '...' | TRUE | FALSE
//! col       := identifier | "quoted identifier"
//! ```
//! Keywords are case-insensitive; `''` inside a string is a quote.

use sluice_sdk::Error;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal as written; typed later against its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number, kept as text so decimals keep their exact digits.
    Number(String),
    /// A `'quoted string'`.
    Str(String),
    /// `date '...'`.
    Date(String),
    /// `timestamp '...'`.
    Timestamp(String),
    /// `true` / `false`.
    Bool(bool),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Date(s) => write!(f, "date '{s}'"),
            Literal::Timestamp(s) => write!(f, "timestamp '{s}'"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `col op literal`
    Cmp(String, Op, Literal),
    /// `col [not] between lo and hi`
    Between(String, Literal, Literal, bool),
    /// `col is [not] null` (the flag is `not`)
    IsNull(String, bool),
    /// `col [not] in (...)`
    In(String, Vec<Literal>, bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn err(msg: impl Into<String>) -> Error {
    Error::InvalidConfig(format!("config key `predicate`: {}", msg.into()))
}

fn tokenize(s: &str) -> Result<Vec<Tok>, Error> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (toks.push(Tok::LParen), i += 1).1,
            ')' => (toks.push(Tok::RParen), i += 1).1,
            ',' => (toks.push(Tok::Comma), i += 1).1,
            '\'' | '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(format!("unterminated {c}...{c} in `{s}`"))),
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            text.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            text.push(o);
                            i += 1;
                        }
                    }
                }
                toks.push(if c == '\'' { Tok::Str(text) } else { Tok::Quoted(text) });
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err(err(format!("unexpected `{c}` in `{s}`"))),
                };
                toks.push(Tok::Op(op));
                i += len;
            }
            c if c.is_ascii_digit()
                || c == '.'
                || ((c == '-' || c == '+') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    let exp_sign = (d == '-' || d == '+') && matches!(chars[i - 1], 'e' | 'E');
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exp_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let text = text.strip_prefix('+').map(str::to_string).unwrap_or(text);
                if text.parse::<f64>().is_err() {
                    return Err(err(format!("`{text}` is not a number")));
                }
                toks.push(Tok::Num(text));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(err(format!("unexpected `{other}` in `{s}`"))),
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str, after: &str) -> Result<(), Error> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(err(format!("expected `{kw}` after {after}, found {}", self.describe())))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "the end".into(),
            Some(Tok::Word(w)) | Some(Tok::Num(w)) => format!("`{w}`"),
            Some(Tok::Quoted(w)) => format!("`\"{w}\"`"),
            Some(Tok::Str(s)) => format!("`'{s}'`"),
            Some(Tok::Op(o)) => format!("`{o:?}`"),
            Some(Tok::LParen) => "`(`".into(),
            Some(Tok::RParen) => "`)`".into(),
            Some(Tok::Comma) => "`,`".into(),
        }
    }

    fn column(&mut self) -> Result<String, Error> {
        match self.next() {
            Some(Tok::Word(w)) if !is_reserved(&w) => Ok(w),
            Some(Tok::Quoted(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(err(format!("expected a column name, found {}", self.describe())))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, Error> {
        let found = self.describe();
        match self.next() {
            Some(Tok::Num(n)) => Ok(Literal::Number(n)),
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Err(err(
                "a comparison with null is never true; use `col is null` or `col is not null`",
            )),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("date") || w.eq_ignore_ascii_case("timestamp") => {
                match self.next() {
                    Some(Tok::Str(s)) if w.eq_ignore_ascii_case("date") => Ok(Literal::Date(s)),
                    Some(Tok::Str(s)) => Ok(Literal::Timestamp(s)),
                    _ => Err(err(format!(
                        "expected a quoted string after `{w}`, e.g. {w} '2024-01-31'"
                    ))),
                }
            }
            _ => Err(err(format!(
                "expected a literal (number, 'string', date '...', true, false), found {found}"
            ))),
        }
    }

    fn cond(&mut self) -> Result<Cond, Error> {
        let col = self.column()?;
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Cond::Cmp(col, op, self.literal()?));
        }
        if self.keyword("is") {
            let not = self.keyword("not");
            self.expect_keyword("null", "`is`")?;
            return Ok(Cond::IsNull(col, not));
        }
        let not = self.keyword("not");
        if self.keyword("between") {
            let lo = self.literal()?;
            self.expect_keyword("and", "`between` and its lower bound")?;
            let hi = self.literal()?;
            return Ok(Cond::Between(col, lo, hi, not));
        }
        if self.keyword("in") {
            if self.next() != Some(Tok::LParen) {
                return Err(err("expected `(` after `in`"));
            }
            let mut list = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => list.push(self.literal()?),
                    Some(Tok::RParen) => break,
                    _ => return Err(err("expected `,` or `)` in the `in` list")),
                }
            }
            return Ok(Cond::In(col, list, not));
        }
        Err(err(format!(
            "expected an operator (=, !=, <, <=, >, >=), `between`, `in` or `is` after column `{col}`, found {}",
            self.describe()
        )))
    }
}

fn is_reserved(w: &str) -> bool {
    ["and", "or", "not", "between", "in", "is", "null", "true", "false"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Parse `predicate` into its conjunction of conditions.
pub fn parse(predicate: &str) -> Result<Vec<Cond>, Error> {
    let mut p = Parser {
        toks: tokenize(predicate)?,
        pos: 0,
    };
    if p.toks.is_empty() {
        return Err(err("the predicate is empty"));
    }
    let mut conds = vec![p.cond()?];
    while p.peek().is_some() {
        if p.keyword("or") {
            return Err(err("`or` is not supported: only `and` of conditions"));
        }
        p.expect_keyword("and", "a condition")?;
        conds.push(p.cond()?);
    }
    Ok(conds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Literal {
        Literal::Number(s.into())
    }

    #[test]
    fn parses_the_b1_predicate() {
        let c = parse("l_discount BETWEEN 0.05 and 0.07 AND l_quantity < 24").unwrap();
        assert_eq!(
            c,
            vec![
                Cond::Between("l_discount".into(), n("0.05"), n("0.07"), false),
                Cond::Cmp("l_quantity".into(), Op::Lt, n("24")),
            ]
        );
    }

    #[test]
    fn parses_every_form() {
        let c = parse(
            r#"a = 'it''s' and "odd col" <> -1.5e3 and d >= date '2024-01-02' and x is not null
               and y IS NULL and z in (1, 2,3) and w not in ('a') and b = TRUE and v not between 1 and 2"#,
        )
        .unwrap();
        assert_eq!(
            c,
            vec![
                Cond::Cmp("a".into(), Op::Eq, Literal::Str("it's".into())),
                Cond::Cmp("odd col".into(), Op::Ne, n("-1.5e3")),
                Cond::Cmp("d".into(), Op::Ge, Literal::Date("2024-01-02".into())),
                Cond::IsNull("x".into(), true),
                Cond::IsNull("y".into(), false),
                Cond::In("z".into(), vec![n("1"), n("2"), n("3")], false),
                Cond::In("w".into(), vec![Literal::Str("a".into())], true),
                Cond::Cmp("b".into(), Op::Eq, Literal::Bool(true)),
                Cond::Between("v".into(), n("1"), n("2"), true),
            ]
        );
    }

    #[test]
    fn rejects_bad_predicates() {
        for (p, want) in [
            ("", "empty"),
            ("a <", "expected a literal"),
            ("a = 1 or b = 2", "`or` is not supported"),
            ("a = 'x", "unterminated"),
            ("a between 1 2", "expected `and`"),
            ("a = null", "is null"),
            ("a foo 1", "expected an operator"),
            ("a in (1, 2", "expected `,` or `)`"),
            ("= 1", "expected a column name"),
            ("a = 1.2.3", "not a number"),
            ("a = 1 b = 2", "expected `and`"),
        ] {
            let e = parse(p).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidConfig(m) if m.contains(want) && m.contains("`predicate`")),
                "{p}: {e}"
            );
        }
    }
}
