//! The widget query language (parsing only; the store evaluates queries).
//!
//! ```text
//! query      = collection { "." step | "and" condition } ;
//! collection = ident "." ident ;                 (* art.artists, social.posts *)
//! step       = ident "(" [ value { "," value } ] ")"   (* list(), limit(10), sort('updated', 'desc') *)
//!            | condition ;
//! condition  = field op value ;                  (* id = 'bafy…', tag = 'jazz', title.full ~ 'x' *)
//! field      = ident { "." ident } ;
//! op         = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" ;   (* ~ : contains *)
//! value      = 'text' | "text" | integer | true | false ;
//! ```
//!
//! Examples: `art.artists.list()`, `art.artists.id = 'bafy…'`,
//! `social.posts.tag = 'music/jazz' and author = 'did:key:z6Mk…'.sort('created', 'desc').limit(20)`.

use std::fmt;

use crate::registry::{self, KindInfo};

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The namespace (`art`).
    pub namespace: String,
    /// The plural collection (`artists`).
    pub collection: String,
    /// Filters and calls, in the order written.
    pub steps: Vec<Step>,
}

/// One step after the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A method call: `list()`, `limit(10)`, `sort('updated', 'desc')`, `count()`, `first()`.
    Call {
        /// The method.
        method: Method,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// A condition every result must meet.
    Filter(Condition),
}

/// The methods a query can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// All matching items (the default).
    List,
    /// How many items match.
    Count,
    /// The first matching item.
    First,
    /// At most N items: `limit(10)`.
    Limit,
    /// Order by a field: `sort('updated')` or `sort('title.full', 'asc')`.
    Sort,
}

impl Method {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "list" => Self::List,
            "count" => Self::Count,
            "first" => Self::First,
            "limit" => Self::Limit,
            "sort" => Self::Sort,
            _ => return None,
        })
    }

    /// The method's name as written.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Count => "count",
            Self::First => "first",
            Self::Limit => "limit",
            Self::Sort => "sort",
        }
    }

    fn check_args(self, args: &[Value]) -> Result<(), &'static str> {
        match (self, args) {
            (Self::List | Self::Count | Self::First, []) => Ok(()),
            (Self::List | Self::Count | Self::First, _) => Err("takes no arguments"),
            (Self::Limit, [Value::Int(n)]) if *n > 0 => Ok(()),
            (Self::Limit, _) => Err("takes one positive integer, as in limit(10)"),
            (Self::Sort, [Value::Text(_)]) => Ok(()),
            (Self::Sort, [Value::Text(_), Value::Text(d)]) if d == "asc" || d == "desc" => Ok(()),
            (Self::Sort, _) => {
                Err("takes a field and optionally 'asc' or 'desc', as in sort('updated', 'desc')")
            }
        }
    }
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The field path (`id`, `tag`, `title.full`).
    pub field: Vec<String>,
    /// The comparison.
    pub op: Op,
    /// What to compare with.
    pub value: Value,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~`: the text contains the value.
    Contains,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Contains => "~",
        }
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Quoted text.
    Text(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
}

/// A query that does not parse; `column` is 1-based and counts characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}\n  {input}\n  {marker}^", marker = " ".repeat(column.saturating_sub(1)))]
pub struct ParseError {
    /// Where the problem is.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The query text.
    pub input: String,
}

/// Longest query accepted.
pub const MAX_QUERY_LEN: usize = 2_000;

impl Query {
    /// Parses a query and checks its collection against the registry.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        Parser::new(input)?.query()
    }

    /// The registered kind this query reads.
    pub fn kind(&self) -> &'static KindInfo {
        // `parse` only accepts collections found in the registry.
        registry::by_collection(&self.namespace, &self.collection).unwrap_or(&registry::KINDS[0])
    }

    /// The filters, in order.
    pub fn filters(&self) -> impl Iterator<Item = &Condition> {
        self.steps.iter().filter_map(|s| match s {
            Step::Filter(c) => Some(c),
            Step::Call { .. } => None,
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => write!(f, "'{}'", t.replace('\\', "\\\\").replace('\'', "\\'")),
            Self::Int(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.collection)?;
        let mut after_filter = false;
        for step in &self.steps {
            match step {
                Step::Filter(c) => {
                    f.write_str(if after_filter { " and " } else { "." })?;
                    write!(f, "{} {} {}", c.field.join("."), c.op.as_str(), c.value)?;
                    after_filter = true;
                }
                Step::Call { method, args } => {
                    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                    write!(f, ".{}({})", method.name(), args.join(", "))?;
                    after_filter = false;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Dot,
    LParen,
    RParen,
    Comma,
    Op(Op),
    Value(Value),
    End,
}

struct Parser<'a> {
    input: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Result<Self, ParseError> {
        let err = |column, message: &str| ParseError {
            column,
            message: message.to_owned(),
            input: input.to_owned(),
        };
        if input.chars().count() > MAX_QUERY_LEN {
            return Err(err(MAX_QUERY_LEN + 1, "query too long"));
        }
        let chars: Vec<char> = input.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let col = i + 1;
            let next = chars.get(i + 1).copied();
            let (tok, len) = match c {
                c if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                '.' => (Tok::Dot, 1),
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                ',' => (Tok::Comma, 1),
                '=' => (Tok::Op(Op::Eq), 1),
                '~' => (Tok::Op(Op::Contains), 1),
                '!' if next == Some('=') => (Tok::Op(Op::Ne), 2),
                '<' if next == Some('=') => (Tok::Op(Op::Le), 2),
                '>' if next == Some('=') => (Tok::Op(Op::Ge), 2),
                '<' => (Tok::Op(Op::Lt), 1),
                '>' => (Tok::Op(Op::Gt), 1),
                '\'' | '"' => {
                    let mut text = String::new();
                    let mut j = i + 1;
                    loop {
                        match chars.get(j) {
                            None => {
                                return Err(err(col, "unterminated text, missing closing quote"));
                            }
                            Some('\\') => match chars.get(j + 1) {
                                Some(e @ ('\\' | '\'' | '"')) => {
                                    text.push(*e);
                                    j += 2;
                                }
                                _ => {
                                    return Err(err(
                                        j + 1,
                                        "unknown escape; use \\\\, \\' or \\\"",
                                    ));
                                }
                            },
                            Some(q) if *q == c => break,
                            Some(ch) => {
                                text.push(*ch);
                                j += 1;
                            }
                        }
                    }
                    (Tok::Value(Value::Text(text)), j + 1 - i)
                }
                c if c.is_ascii_digit()
                    || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
                {
                    let end = (i + 1..chars.len())
                        .find(|&j| !chars[j].is_ascii_digit())
                        .unwrap_or(chars.len());
                    let text: String = chars[i..end].iter().collect();
                    let n = text.parse().map_err(|_| err(col, "integer out of range"))?;
                    (Tok::Value(Value::Int(n)), end - i)
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let end = (i + 1..chars.len())
                        .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '_'))
                        .unwrap_or(chars.len());
                    let word: String = chars[i..end].iter().collect();
                    let tok = match word.as_str() {
                        "true" => Tok::Value(Value::Bool(true)),
                        "false" => Tok::Value(Value::Bool(false)),
                        _ => Tok::Ident(word),
                    };
                    (tok, end - i)
                }
                _ => return Err(err(col, &format!("unexpected character {c:?}"))),
            };
            toks.push((tok, col));
            i += len;
        }
        toks.push((Tok::End, chars.len() + 1));
        Ok(Self {
            input,
            toks,
            pos: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn column(&self) -> usize {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error<T>(&self, column: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column,
            message: message.into(),
            input: self.input.to_owned(),
        })
    }

    fn ident(&mut self, what: &str) -> Result<(String, usize), ParseError> {
        match self.bump() {
            (Tok::Ident(s), col) => Ok((s, col)),
            (_, col) => self.error(col, format!("expected {what}")),
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        let col = self.column();
        if self.bump().0 == tok {
            Ok(())
        } else {
            self.error(col, format!("expected {what}"))
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.bump() {
            (Tok::Value(v), _) => Ok(v),
            (_, col) => self.error(col, "expected a value: 'text', a number, true or false"),
        }
    }

    fn query(mut self) -> Result<Query, ParseError> {
        let (namespace, ns_col) = self.ident("a namespace, as in art.artists")?;
        self.expect(Tok::Dot, "'.' after the namespace, as in art.artists")?;
        let (collection, _) = self.ident("a collection, as in art.artists")?;
        if registry::by_collection(&namespace, &collection).is_none() {
            let known: Vec<String> = registry::KINDS
                .iter()
                .map(|k| format!("{}.{}", k.namespace(), k.collection))
                .collect();
            return self.error(
                ns_col,
                format!(
                    "unknown collection {namespace}.{collection}; known: {}",
                    known.join(", ")
                ),
            );
        }
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Tok::End => break,
                Tok::Dot => {
                    self.bump();
                    let (first, col) = self.ident("a method or a field after '.'")?;
                    if *self.peek() == Tok::LParen {
                        steps.push(self.call(first, col)?);
                    } else {
                        steps.push(Step::Filter(self.condition(first)?));
                    }
                }
                Tok::Ident(w) if w == "and" && matches!(steps.last(), Some(Step::Filter(_))) => {
                    self.bump();
                    let (first, _) = self.ident("a field after 'and'")?;
                    steps.push(Step::Filter(self.condition(first)?));
                }
                _ => {
                    let col = self.column();
                    return self.error(col, "expected '.', 'and' or the end of the query");
                }
            }
        }
        Ok(Query {
            namespace,
            collection,
            steps,
        })
    }

    fn call(&mut self, name: String, col: usize) -> Result<Step, ParseError> {
        let Some(method) = Method::parse(&name) else {
            return self.error(
                col,
                format!("unknown method {name}(); known: list, count, first, limit, sort"),
            );
        };
        self.bump(); // (
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.value()?);
                if *self.peek() == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(Tok::RParen, "')' to close the call")?;
        if let Err(m) = method.check_args(&args) {
            return self.error(col, format!("{name}() {m}"));
        }
        Ok(Step::Call { method, args })
    }

    fn condition(&mut self, first: String) -> Result<Condition, ParseError> {
        let mut field = vec![first];
        while *self.peek() == Tok::Dot {
            self.bump();
            field.push(self.ident("a field name after '.'")?.0);
        }
        let op = match self.bump() {
            (Tok::Op(op), _) => op,
            (_, col) => {
                return self.error(
                    col,
                    "expected an operator (=, !=, <, <=, >, >=, ~) or a call like list()",
                );
            }
        };
        let value = self.value()?;
        Ok(Condition { field, op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_examples() {
        let q = Query::parse("art.artists.list()").unwrap();
        assert_eq!(
            (q.namespace.as_str(), q.collection.as_str()),
            ("art", "artists")
        );
        assert_eq!(
            q.steps,
            vec![Step::Call {
                method: Method::List,
                args: vec![]
            }]
        );
        assert_eq!(q.kind().name, "art.artist");

        let q = Query::parse("art.artists.id = 'bafyreiabc'").unwrap();
        assert_eq!(
            q.steps,
            vec![Step::Filter(Condition {
                field: vec!["id".into()],
                op: Op::Eq,
                value: Value::Text("bafyreiabc".into())
            })]
        );

        let q = Query::parse("social.posts.tag = 'jazz'").unwrap();
        assert_eq!(q.kind().name, "social.post");
    }

    #[test]
    fn parses_chains_and_round_trips_through_display() {
        let text = "social.posts.tag = 'music/jazz' and author != 'did:key:z6Mk' and title.full ~ 'it\\'s'.sort('created', 'desc').limit(20)";
        let q = Query::parse(text).unwrap();
        assert_eq!(q.filters().count(), 3);
        assert_eq!(Query::parse(&q.to_string()).unwrap(), q);
        assert_eq!(q.to_string(), text);
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = Query::parse("art.artistz.list()").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown collection art.artistz"), "{e}");
        let e = Query::parse("art.artists.lst()").unwrap_err();
        assert_eq!(e.column, 13);
        let e = Query::parse("art.artists.id = ").unwrap_err();
        assert_eq!(e.column, 18);
        let e = Query::parse("art.artists.id = 'x").unwrap_err();
        assert_eq!(e.column, 18);
        assert!(e.to_string().contains("\n                   ^"), "{e}");
        let e = Query::parse("art.artists.limit(0)").unwrap_err();
        assert!(e.message.contains("positive"), "{e}");
        let e = Query::parse("art.artists.id = 'x' 'y'").unwrap_err();
        assert_eq!(e.column, 22);
        let e = Query::parse("art.artists.id # 3").unwrap_err();
        assert_eq!(e.column, 16);
        assert!(Query::parse("art.artists.list() and x = 1").is_err());
        assert!(Query::parse("").is_err());
    }
}
