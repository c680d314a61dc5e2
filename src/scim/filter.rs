//! SCIM 2.0 filter (RFC 7644 §3.4.2.2) and PATCH path (RFC 7644 §3.5.2) parser.
//!
//! Keywords (operators, `and`/`or`/`not`, `true`/`false`/`null`, the `urn:` prefix) are
//! case-insensitive as RFC 7643 §2.1 requires; attribute names and URNs keep the case the
//! client sent, because matching them against a schema is the caller's job.
//!
//! The parser is purely syntactic: whether `gt` makes sense for a boolean, or whether an
//! attribute exists, is left to the code that evaluates the filter.
//!
//! Input comes straight from identity providers, so every path returns a [`ParseError`]
//! instead of panicking, positions are counted in chars (not bytes) so they stay meaningful
//! for non-ASCII input, and nesting and size are capped so no input can exhaust the stack.

use std::fmt;
use std::ops::Range;

use serde_json::{Number, Value};

/// Deepest nesting of `(`, `not (` and `[` accepted. The parser recurses once per level,
/// so this bounds its stack use whatever a client sends.
const MAX_NESTING: usize = 64;

/// Most attribute expressions in one filter. A chain such as `a pr or b pr or …` parses
/// iteratively but builds a left-deep tree, and the derived `Drop`, `Clone`, `PartialEq`
/// and `Debug` recurse once per level; bounding the operands keeps the tree depth under
/// `MAX_TERMS + MAX_NESTING`.
const MAX_TERMS: usize = 256;

/// `attrPath = [URI ":"] ATTRNAME *1subAttr`
///
/// The URN is everything before the last ':', so a bare extension URN such as
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` parses as URN
/// `urn:…:enterprise:2.0` with name `User`; a caller that accepts whole-extension paths must
/// recognise that shape itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// Schema URN without the trailing ':', e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.
    pub urn: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

/// The nine comparison operators of RFC 7644 §3.4.2.2 (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `value` is always a string, number, bool or null when produced by [`parse_filter`].
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@x"]`; the inner filter never holds another
    /// value path, as the grammar forbids it.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// PATCH `path = attrPath / valuePath [subAttr]`, e.g. `members[value eq "x"]`,
/// `emails[type eq "work"].value`, `name.givenName`. `sub_attr` is only set after a filter;
/// `name.givenName` keeps its sub-attribute in `attr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_attr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct ParseError {
    /// Offset in chars (not bytes) from the start of the input.
    pub position: usize,
    pub message: String,
}

/// Parses a `filter` query parameter (already URL-decoded).
pub fn parse_filter(input: &str) -> Result<Filter, ParseError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.peek().is_none() {
        return Err(error(0, "empty filter"));
    }
    let filter = p.parse_or(false)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(filter),
        Some(c @ (')' | ']')) => Err(error(p.pos, format!("unexpected '{c}'"))),
        Some(_) => Err(error(p.pos, format!("trailing input {}; expected 'and', 'or' or end of filter", p.found()))),
    }
}

/// Parses the `path` of a PATCH operation.
pub fn parse_path(input: &str) -> Result<PatchPath, ParseError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    match p.peek() {
        None => return Err(error(0, "empty path")),
        Some(c) if is_delimiter(c) => {
            return Err(error(p.pos, format!("expected an attribute name, found {}", p.found())))
        }
        Some(_) => {}
    }
    let word = p.run();
    let attr = p.attr_path(word)?;
    let mut filter = None;
    let mut sub_attr = None;
    if p.eat_open_bracket() {
        filter = Some(p.enclosed(p.pos - 1, ']', true)?);
        if p.peek() == Some('.') {
            p.pos += 1;
            let at = p.pos;
            let word = p.run();
            sub_attr = Some(attr_name(p.slice(word), at)?);
        }
    }
    p.skip_ws();
    if p.peek().is_some() {
        return Err(error(
            p.pos,
            format!("trailing input {}; a PATCH path is attr, attr[filter] or attr[filter].subAttr", p.found()),
        ));
    }
    Ok(PatchPath { attr, filter, sub_attr })
}

fn error(position: usize, message: impl Into<String>) -> ParseError {
    ParseError { position, message: message.into() }
}

/// Characters that end a bare word (attribute path, operator, keyword, number).
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// ASCII case-insensitive comparison of a char slice with a keyword.
fn eq_ci(chars: &[char], keyword: &str) -> bool {
    chars.len() == keyword.len() && chars.iter().zip(keyword.chars()).all(|(a, b)| a.eq_ignore_ascii_case(&b))
}

/// Quotes user input for an error message: truncated so a huge filter cannot flood a log
/// line, and escaped so control characters cannot forge one.
fn quote(chars: impl IntoIterator<Item = char>) -> String {
    let mut out = String::from("'");
    for (i, c) in chars.into_iter().enumerate() {
        if i == 32 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('\'');
    out
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus the `$ref` sub-attribute of references.
fn attr_name(name: &[char], at: usize) -> Result<String, ParseError> {
    if eq_ci(name, "$ref") {
        return Ok(name.iter().collect());
    }
    match name.first() {
        None => return Err(error(at, "expected an attribute name")),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(error(at, format!("attribute names must start with a letter, found {}", quote([*c]))))
        }
        Some(_) => {}
    }
    let bad = name.iter().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')));
    if let Some((i, &c)) = bad {
        let message = match c {
            '.' => "only one sub-attribute level is allowed".to_string(),
            ':' => "':' is only allowed in a schema URN prefix starting with 'urn:'".to_string(),
            _ => format!("invalid character {} in attribute name", quote([c])),
        };
        return Err(error(at + i, message));
    }
    Ok(name.iter().collect())
}

/// Validates a JSON number and converts it. Floats go through `str::parse` rather than
/// serde_json, whose default float parsing is not guaranteed to round-trip exactly.
fn parse_number(token: &str) -> Result<Number, &'static str> {
    let bytes = token.as_bytes();
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let int_start = usize::from(bytes.first() == Some(&b'-'));
    let mut i = digits_from(int_start);
    let leading_zero = bytes.get(int_start) == Some(&b'0') && i - int_start > 1;
    if i == int_start || leading_zero {
        return Err("invalid number");
    }
    let mut is_float = false;
    if bytes.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        if end == i + 1 {
            return Err("invalid number");
        }
        (i, is_float) = (end, true);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits_from(i);
        if end == i {
            return Err("invalid number");
        }
        (i, is_float) = (end, true);
    }
    if i != bytes.len() {
        return Err("invalid number");
    }
    if !is_float {
        if let Ok(n) = token.parse::<u64>() {
            return Ok(n.into());
        }
        if let Ok(n) = token.parse::<i64>() {
            return Ok(n.into());
        }
    }
    // Integers beyond 64 bits become floats, as serde_json does.
    token.parse::<f64>().ok().and_then(Number::from_f64).ok_or("number out of range")
}

/// Recursive-descent parser over chars, so positions are char offsets and no slice can
/// split a UTF-8 sequence.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    nesting: usize,
    terms: usize,
}

impl Parser {
    fn new(input: &str) -> Self {
        Parser { chars: input.chars().collect(), pos: 0, nesting: 0, terms: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn slice(&self, range: Range<usize>) -> &[char] {
        self.chars.get(range).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Consumes a bare word: everything up to the next delimiter.
    fn run(&mut self) -> Range<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            self.pos += 1;
        }
        start..self.pos
    }

    /// Describes what is at the cursor, for "found …" in messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(_) => quote(self.slice(self.pos..self.chars.len()).iter().copied()),
        }
    }

    /// Consumes `keyword` if it comes next, after optional whitespace, as a whole word.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let save = self.pos;
        self.skip_ws();
        let end = self.pos + keyword.len();
        let is_match = self.chars.get(self.pos..end).is_some_and(|w| eq_ci(w, keyword))
            && self.chars.get(end).is_none_or(|&c| is_delimiter(c));
        self.pos = if is_match { end } else { save };
        is_match
    }

    /// Consumes `[` after optional whitespace (tolerated between an attribute and its filter).
    fn eat_open_bracket(&mut self) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some('[') {
            self.pos += 1;
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// `or` binds loosest; chains are left-associative.
    fn parse_or(&mut self, in_value_path: bool) -> Result<Filter, ParseError> {
        let mut left = self.parse_and(in_value_path)?;
        while self.eat_keyword("or") {
            let right = self.parse_and(in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, in_value_path: bool) -> Result<Filter, ParseError> {
        let mut left = self.parse_atom(in_value_path)?;
        while self.eat_keyword("and") {
            let right = self.parse_atom(in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// A parenthesized filter, `not (…)`, an attribute expression or a value path. `not` is
    /// only a keyword before `(`, so an attribute may be named `not`.
    fn parse_atom(&mut self, in_value_path: bool) -> Result<Filter, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(error(start, "unexpected end of input; expected an attribute name, 'not' or '('")),
            Some('(') => {
                self.pos += 1;
                self.enclosed(start, ')', in_value_path)
            }
            Some(c @ (')' | ']')) => Err(error(start, format!("unexpected '{c}'"))),
            Some('[') => Err(error(start, "unexpected '['; a value filter must follow an attribute name")),
            Some('"') => Err(error(start, "unexpected string; expected an attribute name")),
            Some(_) => {
                let word = self.run();
                let is_not = eq_ci(self.slice(word.clone()), "not");
                if is_not {
                    let after_word = self.pos;
                    self.skip_ws();
                    if self.peek() == Some('(') {
                        let open = self.pos;
                        self.pos += 1;
                        let inner = self.enclosed(open, ')', in_value_path)?;
                        return Ok(Filter::Not(Box::new(inner)));
                    }
                    self.pos = after_word;
                }
                self.attr_expr(word, is_not, in_value_path)
            }
        }
    }

    /// Parses the inside of `(…)` or `[…]` whose opener at `open` was just consumed.
    fn enclosed(&mut self, open: usize, close: char, in_value_path: bool) -> Result<Filter, ParseError> {
        let opener = if close == ')' { '(' } else { '[' };
        if self.nesting >= MAX_NESTING {
            return Err(error(open, format!("'(', 'not (' and '[' nest deeper than {MAX_NESTING} levels")));
        }
        self.nesting += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            let what = if close == ')' { "parentheses" } else { "value filter" };
            return Err(error(self.pos, format!("empty {what}")));
        }
        let inner = self.parse_or(in_value_path)?;
        self.skip_ws();
        match self.peek() {
            Some(c) if c == close => self.pos += 1,
            None => {
                return Err(error(
                    self.pos,
                    format!("missing '{close}' to close '{opener}' (opened at position {open})"),
                ))
            }
            Some(_) => {
                return Err(error(
                    self.pos,
                    format!(
                        "expected 'and', 'or' or '{close}' to close '{opener}' (opened at position {open}), found {}",
                        self.found()
                    ),
                ))
            }
        }
        self.nesting -= 1;
        Ok(inner)
    }

    /// `attrPath SP "pr"`, `attrPath SP compareOp SP compValue` or `attrPath "[" valFilter "]"`
    /// for the attribute path in `word`. `is_not` flags a `not` that lacked its `(`.
    fn attr_expr(&mut self, word: Range<usize>, is_not: bool, in_value_path: bool) -> Result<Filter, ParseError> {
        let start = word.start;
        let path = self.attr_path(word)?;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(error(start, format!("filter has more than {MAX_TERMS} attribute expressions")));
        }
        if self.eat_open_bracket() {
            let open = self.pos - 1;
            if in_value_path {
                return Err(error(open, "value filters cannot be nested"));
            }
            let filter = Box::new(self.enclosed(open, ']', true)?);
            if self.peek() == Some('.') {
                return Err(error(
                    self.pos,
                    "a sub-attribute after ']' is only allowed in PATCH paths; \
                     put the condition inside the brackets instead",
                ));
            }
            return Ok(Filter::ValuePath { path, filter });
        }
        self.skip_ws();
        let op_pos = self.pos;
        let op_word = self.run();
        let op = match self.slice(op_word) {
            w if eq_ci(w, "pr") => return Ok(Filter::Present(path)),
            w if eq_ci(w, "eq") => CompareOp::Eq,
            w if eq_ci(w, "ne") => CompareOp::Ne,
            w if eq_ci(w, "co") => CompareOp::Co,
            w if eq_ci(w, "sw") => CompareOp::Sw,
            w if eq_ci(w, "ew") => CompareOp::Ew,
            w if eq_ci(w, "gt") => CompareOp::Gt,
            w if eq_ci(w, "ge") => CompareOp::Ge,
            w if eq_ci(w, "lt") => CompareOp::Lt,
            w if eq_ci(w, "le") => CompareOp::Le,
            _ if is_not => {
                return Err(error(start, "'not' must be followed by a filter in parentheses, e.g. not (title pr)"))
            }
            w => {
                let found = if w.is_empty() { self.found() } else { quote(w.iter().copied()) };
                return Err(error(
                    op_pos,
                    format!(
                        "expected a comparison operator after {} \
                         (eq, ne, co, sw, ew, gt, ge, lt, le or pr), found {found}",
                        quote(path.to_string().chars())
                    ),
                ));
            }
        };
        self.skip_ws();
        let value = self.value(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// Splits a bare word into URN, name and sub-attribute. The URN is everything before the
    /// last ':' (URNs contain ':' and '.', e.g. `…:core:2.0:User`), which is unambiguous
    /// because attribute names contain neither.
    fn attr_path(&self, range: Range<usize>) -> Result<AttrPath, ParseError> {
        let start = range.start;
        let word = self.slice(range);
        let mut urn = None;
        let mut rest = word;
        let mut rest_at = start;
        if word.get(..4).is_some_and(|p| eq_ci(p, "urn:")) {
            let colon = word.iter().rposition(|&c| c == ':').unwrap_or(3);
            if colon < 5 {
                return Err(error(
                    start,
                    format!(
                        "incomplete schema URN in {}; expected urn:<schema>:<attribute>",
                        quote(word.iter().copied())
                    ),
                ));
            }
            let (prefix, name) = word.split_at(colon);
            if let Some(i) = prefix.iter().position(|c| !c.is_ascii_graphic()) {
                return Err(error(start + i, "invalid character in schema URN"));
            }
            urn = Some(prefix.iter().collect());
            rest = name.get(1..).unwrap_or_default();
            rest_at = start + colon + 1;
        }
        let dot = rest.iter().position(|&c| c == '.').unwrap_or(rest.len());
        let (name, sub) = rest.split_at(dot);
        Ok(AttrPath {
            urn,
            name: attr_name(name, rest_at)?,
            sub_attr: match sub.get(1..) {
                Some(sub) => Some(attr_name(sub, rest_at + dot + 1)?),
                None => None,
            },
        })
    }

    /// `compValue = false / null / true / number / string`
    fn value(&mut self, op: CompareOp) -> Result<Value, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some('"') => self.string().map(Value::String),
            Some(c) if !is_delimiter(c) => {
                let word = self.run();
                let token: String = self.slice(word).iter().collect();
                if c == '-' || c.is_ascii_digit() {
                    return parse_number(&token)
                        .map(Value::Number)
                        .map_err(|m| error(start, format!("{m} {}", quote(token.chars()))));
                }
                match token.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => Err(error(
                        start,
                        format!("invalid value {}; strings must be in double quotes", quote(token.chars())),
                    )),
                }
            }
            _ => Err(error(
                start,
                format!("expected a value (string, number, true, false or null) after '{op}', found {}", self.found()),
            )),
        }
    }

    /// A JSON string literal. Syntax is checked here so errors point at the offending
    /// char; decoding is left to serde_json.
    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        loop {
            let at = self.pos;
            match self.peek() {
                None => return Err(error(open, "unterminated string")),
                Some('"') => break,
                Some('\\') => {
                    self.pos += 1;
                    self.escape(open, at)?;
                }
                Some(c) if c < ' ' => {
                    return Err(error(
                        at,
                        format!(
                            "control character U+{:04X} in string; escape it, e.g. \\u{:04x}",
                            u32::from(c),
                            u32::from(c)
                        ),
                    ))
                }
                Some(_) => self.pos += 1,
            }
        }
        self.pos += 1;
        let literal: String = self.slice(open..self.pos).iter().collect();
        serde_json::from_str(&literal).map_err(|e| error(open, format!("invalid string literal: {e}")))
    }

    /// Checks the escape after the backslash at `backslash`, including that UTF-16
    /// surrogates come in pairs (a Rust string cannot hold a lone one).
    fn escape(&mut self, open: usize, backslash: usize) -> Result<(), ParseError> {
        match self.peek() {
            None => Err(error(open, "unterminated string")),
            Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => {
                self.pos += 1;
                Ok(())
            }
            Some('u') => {
                self.pos += 1;
                let unit = self.hex4(backslash)?;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err(error(backslash, "unpaired UTF-16 low surrogate in string"));
                }
                if (0xD800..0xDC00).contains(&unit) {
                    let low_at = self.pos;
                    let has_escape = self.slice(low_at..low_at + 2) == ['\\', 'u'];
                    self.pos += 2;
                    if !has_escape || !(0xDC00..0xE000).contains(&self.hex4(low_at)?) {
                        return Err(error(
                            backslash,
                            "unpaired UTF-16 high surrogate in string; expected a \\uDC00-\\uDFFF escape after it",
                        ));
                    }
                }
                Ok(())
            }
            Some(c) => Err(error(backslash, format!("invalid escape {} in string", quote(['\\', c])))),
        }
    }

    fn hex4(&mut self, backslash: usize) -> Result<u32, ParseError> {
        let unit = self
            .chars
            .get(self.pos..self.pos + 4)
            .and_then(|d| d.iter().try_fold(0u32, |acc, c| Some(acc * 16 + c.to_digit(16)?)));
        match unit {
            Some(unit) => {
                self.pos += 4;
                Ok(unit)
            }
            None => Err(error(backslash, "invalid \\u escape; expected four hex digits")),
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        })
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Canonical text: lowercase keywords, JSON literals, and parentheses only where
/// precedence or left-associativity would otherwise change the tree on re-parsing.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn operand(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
            if parens {
                write!(f, "({filter})")
            } else {
                write!(f, "{filter}")
            }
        }
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(left, right) => {
                operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                operand(f, right, matches!(**right, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(name: &str) -> AttrPath {
        AttrPath { urn: None, name: name.into(), sub_attr: None }
    }

    fn sub(name: &str, sub: &str) -> AttrPath {
        AttrPath { sub_attr: Some(sub.into()), ..path(name) }
    }

    fn cmp(p: AttrPath, op: CompareOp, value: Value) -> Filter {
        Filter::Compare { path: p, op, value }
    }

    fn pr(name: &str) -> Filter {
        Filter::Present(path(name))
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    fn vp(p: AttrPath, f: Filter) -> Filter {
        Filter::ValuePath { path: p, filter: Box::new(f) }
    }

    fn parse(input: &str) -> Filter {
        let filter = parse_filter(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let again = parse_filter(&filter.to_string());
        assert_eq!(again.as_ref(), Ok(&filter), "re-parsing {filter}");
        filter
    }

    fn value_of(input: &str) -> Value {
        match parse(&format!("a eq {input}")) {
            Filter::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        }
    }

    fn fails(input: &str, position: usize, message: &str) {
        let shown: String = input.chars().take(80).collect();
        let err = parse_filter(input).expect_err(&shown);
        assert!(err.message.contains(message), "{shown:?}: {:?} lacks {message:?}", err.message);
        assert_eq!(err.position, position, "{shown:?}: {err}");
    }

    fn path_fails(input: &str, position: usize, message: &str) {
        let err = parse_path(input).expect_err(input);
        assert!(err.message.contains(message), "{input:?}: {:?} lacks {message:?}", err.message);
        assert_eq!(err.position, position, "{input:?}: {err}");
    }

    #[test]
    fn every_comparison_operator_in_any_case() {
        let ops = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        for (text, op) in ops {
            let upper = text.to_ascii_uppercase();
            let mixed = format!("{}{}", &upper[..1], &text[1..]);
            for spelled in [text.to_string(), upper, mixed] {
                let expected = cmp(path("userName"), op, json!("x"));
                assert_eq!(parse(&format!("userName {spelled} \"x\"")), expected);
            }
            assert_eq!(op.to_string(), text);
        }
    }

    #[test]
    fn present() {
        assert_eq!(parse("title pr"), pr("title"));
        assert_eq!(parse("title PR"), pr("title"));
        assert_eq!(parse("name.familyName Pr"), Filter::Present(sub("name", "familyName")));
    }

    #[test]
    fn identity_provider_filters() {
        // Okta
        assert_eq!(
            parse(r#"userName eq "jdoe@example.com""#),
            cmp(path("userName"), CompareOp::Eq, json!("jdoe@example.com"))
        );
        // Entra ID
        assert_eq!(parse(r#"externalId eq "x""#), cmp(path("externalId"), CompareOp::Eq, json!("x")));
        assert_eq!(
            parse(r#"members[value eq "abc"]"#),
            vp(path("members"), cmp(path("value"), CompareOp::Eq, json!("abc")))
        );
        assert_eq!(parse(r#"userName EQ "x""#), cmp(path("userName"), CompareOp::Eq, json!("x")));
    }

    #[test]
    fn rfc7644_examples_parse_and_round_trip() {
        for input in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            parse(input);
        }
    }

    #[test]
    fn precedence_and_associativity() {
        let term = |n: &str, v: i32| cmp(path(n), CompareOp::Eq, json!(v));
        assert_eq!(parse("a eq 1 or b eq 2 and c eq 3"), or(term("a", 1), and(term("b", 2), term("c", 3))));
        assert_eq!(parse("a eq 1 and b eq 2 or c eq 3"), or(and(term("a", 1), term("b", 2)), term("c", 3)));
        assert_eq!(parse("a pr or b pr or c pr"), or(or(pr("a"), pr("b")), pr("c")));
        assert_eq!(parse("a pr and b pr and c pr"), and(and(pr("a"), pr("b")), pr("c")));
        assert_eq!(parse("not (a pr) and b pr"), and(not(pr("a")), pr("b")));
        assert_eq!(parse("a pr and not (b pr or c pr)"), and(pr("a"), not(or(pr("b"), pr("c")))));
    }

    #[test]
    fn parentheses() {
        assert_eq!(parse("(a pr or b pr) and c pr"), and(or(pr("a"), pr("b")), pr("c")));
        assert_eq!(parse("a pr or (b pr or c pr)"), or(pr("a"), or(pr("b"), pr("c"))));
        assert_eq!(parse("((( a pr )))"), pr("a"));
        assert_eq!(parse("(a pr)and(b pr)"), and(pr("a"), pr("b")));
    }

    #[test]
    fn not_is_a_keyword_only_before_parentheses() {
        assert_eq!(parse("not (a pr)"), not(pr("a")));
        assert_eq!(parse("NOT(a pr)"), not(pr("a")));
        assert_eq!(parse("not ( not (a pr) )"), not(not(pr("a"))));
        assert_eq!(parse("not pr"), pr("not"));
        assert_eq!(parse(r#"not eq "x""#), cmp(path("not"), CompareOp::Eq, json!("x")));
        assert_eq!(parse("and pr and or pr or pr pr"), or(and(pr("and"), pr("or")), pr("pr")));
        fails(r#"not userName eq "x""#, 0, "'not' must be followed by a filter in parentheses");
    }

    #[test]
    fn value_paths() {
        let work = cmp(path("type"), CompareOp::Eq, json!("work"));
        assert_eq!(
            parse(r#"emails[type eq "work" and value co "@x"]"#),
            vp(path("emails"), and(work.clone(), cmp(path("value"), CompareOp::Co, json!("@x"))))
        );
        assert_eq!(
            parse(r#"emails[not (type eq "work")] and userName pr"#),
            and(vp(path("emails"), not(work.clone())), pr("userName"))
        );
        assert_eq!(parse(r#"emails [ type eq "work" ]"#), vp(path("emails"), work));
        fails(r#"emails[type eq "work"].value eq "x""#, 22, "only allowed in PATCH paths");
        fails("a[b[c pr]]", 3, "value filters cannot be nested");
        fails("a[(b[c pr])]", 4, "value filters cannot be nested");
        fails("emails[]", 7, "empty value filter");
        fails("emails[type pr", 14, "missing ']' to close '[' (opened at position 6)");
        fails("emails[type pr)", 14, "expected 'and', 'or' or ']'");
    }

    #[test]
    fn schema_urns() {
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        assert_eq!(
            parse(&format!("{core}:name.familyName pr")),
            Filter::Present(AttrPath {
                urn: Some(core.into()),
                name: "name".into(),
                sub_attr: Some("familyName".into()),
            })
        );
        let enterprise = "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            parse(&format!("{enterprise}:manager.value eq \"42\"")),
            cmp(
                AttrPath { urn: Some(enterprise.into()), name: "manager".into(), sub_attr: Some("value".into()) },
                CompareOp::Eq,
                json!("42")
            )
        );
        fails("urn:name pr", 0, "incomplete schema URN");
        fails("urn:x: pr", 6, "expected an attribute name");
        fails("core:2.0:User:userName pr", 4, "only allowed in a schema URN prefix");
        fails("urn:x\u{7}:a pr", 5, "invalid character in schema URN");
    }

    #[test]
    fn attribute_names() {
        assert_eq!(parse("members.$ref pr"), Filter::Present(sub("members", "$ref")));
        assert_eq!(parse("$ref pr"), pr("$ref"));
        assert_eq!(parse("x-Custom_attr9 pr"), pr("x-Custom_attr9"));
        assert_eq!(parse("UserName pr"), pr("UserName"));
        fails("9lives pr", 0, "must start with a letter");
        fails("name.given.x pr", 10, "only one sub-attribute level");
        fails("na$me pr", 2, "invalid character '$' in attribute name");
        fails("usérName pr", 2, "invalid character 'é'");
        fails("name. pr", 5, "expected an attribute name");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            value_of(r#""q\" b\\ s\/ \b\f\n\r\t \u00e9 \uD83D\ude00 \u0000""#),
            json!("q\" b\\ s/ \u{8}\u{c}\n\r\t é 😀 \u{0}")
        );
        assert_eq!(value_of(r#""*)(uid=*""#), json!("*)(uid=*"));
        assert_eq!(value_of("\"ünï😀\u{7f}\""), json!("ünï😀\u{7f}"));
        assert_eq!(value_of(r#""""#), json!(""));
        fails(r#"a eq "abc"#, 5, "unterminated string");
        fails(r#"a eq "abc\"#, 5, "unterminated string");
        fails(r#"a eq "a\x""#, 7, r"invalid escape '\\x'");
        fails(r#"a eq "\u12g4""#, 6, "expected four hex digits");
        fails(r#"a eq "\ud800""#, 6, "unpaired UTF-16 high surrogate");
        fails(r#"a eq "\ud800\u0041""#, 6, "unpaired UTF-16 high surrogate");
        fails(r#"a eq "x\udc00""#, 7, "unpaired UTF-16 low surrogate");
        fails("a eq \"a\tb\"", 7, "control character U+0009");
    }

    #[test]
    fn numbers() {
        assert_eq!(value_of("42"), json!(42));
        assert_eq!(value_of("-7"), json!(-7));
        assert_eq!(value_of("0"), json!(0));
        assert_eq!(value_of("3.25"), json!(3.25));
        assert_eq!(value_of("1e3"), json!(1000.0));
        assert_eq!(value_of("-2.5E-3"), json!(-0.0025));
        assert_eq!(value_of("1E+2"), json!(100.0));
        assert_eq!(value_of("18446744073709551615"), json!(u64::MAX));
        assert_eq!(value_of("-9223372036854775808"), json!(i64::MIN));
        assert_eq!(value_of("18446744073709551616"), json!(18446744073709551616.0));
        for bad in ["01", "1.", "-", "1e", "1.5.2", "1e+", "--1", "1x"] {
            fails(&format!("a eq {bad}"), 5, "invalid number");
        }
        fails("a eq 1e400", 5, "number out of range");
        fails("a eq .5", 5, "invalid value '.5'");
    }

    #[test]
    fn keywords_literals() {
        assert_eq!(value_of("true"), json!(true));
        assert_eq!(value_of("FALSE"), json!(false));
        assert_eq!(value_of("Null"), Value::Null);
        fails("a eq bjensen", 5, "strings must be in double quotes");
        fails("a eq truex", 5, "invalid value 'truex'");
    }

    #[test]
    fn whitespace_is_lenient() {
        assert_eq!(
            parse("  userName \t EQ\t\"x\"   and\n\ttitle   pr  "),
            and(cmp(path("userName"), CompareOp::Eq, json!("x")), pr("title"))
        );
        assert_eq!(parse(r#"a eq "x"and b pr"#), and(cmp(path("a"), CompareOp::Eq, json!("x")), pr("b")));
    }

    #[test]
    fn errors_carry_positions() {
        fails("", 0, "empty filter");
        fails("   ", 0, "empty filter");
        fails("userName", 8, "expected a comparison operator after 'userName'");
        fails(r#"userName "x""#, 9, "expected a comparison operator after 'userName'");
        fails(r#"userName == "x""#, 9, "found '=='");
        fails("userName eq", 11, "expected a value");
        fails("userName eq )", 12, "expected a value");
        fails("a pr)", 4, "unexpected ')'");
        fails(")", 0, "unexpected ')'");
        fails("a pr b pr", 5, "trailing input 'b pr'");
        fails("a pr andb pr", 5, "trailing input");
        fails("a pr and", 8, "unexpected end of input");
        fails("(a pr", 5, "missing ')' to close '(' (opened at position 0)");
        fails("()", 1, "empty parentheses");
        fails("not ()", 5, "empty parentheses");
        fails("[a pr]", 0, "unexpected '['");
        fails(r#""a" eq 1"#, 0, "unexpected string");
        // Positions count chars, not bytes.
        fails("ééé eq 1", 0, "must start with a letter");
        fails(r#"a eq "é" pr"#, 9, "trailing input");
    }

    #[test]
    fn error_display() {
        let err = parse_filter("a pr)").unwrap_err();
        assert_eq!(err.to_string(), "unexpected ')' at position 4");
    }

    #[test]
    fn error_messages_are_escaped_and_truncated() {
        let err = parse_filter(&format!("a pr \n{}", "x".repeat(1000))).unwrap_err();
        assert!(!err.message.contains('\n'), "{}", err.message);
        assert!(err.message.len() < 200, "{}", err.message);
    }

    #[test]
    fn canonical_display() {
        let cases = [
            (r#"userName   EQ  "a\u0041""#, r#"userName eq "aA""#),
            ("a pr OR b pr AND c pr", "a pr or b pr and c pr"),
            ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
            ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
            ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
            ("(a pr and b pr) or c pr", "a pr and b pr or c pr"),
            ("NOT(a pr)", "not (a pr)"),
            (r#"emails[ type eq "work" ]"#, r#"emails[type eq "work"]"#),
            ("a eq 1E2", "a eq 100.0"),
            ("a eq TRUE", "a eq true"),
            ("a eq null", "a eq null"),
        ];
        for (input, canonical) in cases {
            assert_eq!(parse(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = |s: &str| {
            let parsed = parse_path(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(parse_path(&parsed.to_string()).as_ref(), Ok(&parsed));
            parsed
        };
        assert_eq!(p("members"), PatchPath { attr: path("members"), filter: None, sub_attr: None });
        assert_eq!(p("name.givenName"), PatchPath { attr: sub("name", "givenName"), filter: None, sub_attr: None });
        assert_eq!(
            p(r#"members[value eq "abc"]"#),
            PatchPath {
                attr: path("members"),
                filter: Some(cmp(path("value"), CompareOp::Eq, json!("abc"))),
                sub_attr: None
            }
        );
        assert_eq!(
            p(r#"emails[type eq "work"].value"#),
            PatchPath {
                attr: path("emails"),
                filter: Some(cmp(path("type"), CompareOp::Eq, json!("work"))),
                sub_attr: Some("value".into())
            }
        );
        assert_eq!(
            p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            PatchPath {
                attr: AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into()),
                    name: "manager".into(),
                    sub_attr: None
                },
                filter: None,
                sub_attr: None
            }
        );
        assert_eq!(
            p(r#"members[value eq "2819c223" or not (display pr)].displayName"#).to_string(),
            r#"members[value eq "2819c223" or not (display pr)].displayName"#
        );
        path_fails("", 0, "empty path");
        path_fails("[a pr]", 0, "expected an attribute name");
        path_fails("emails[type eq \"work\"].value.x", 28, "only one sub-attribute level");
        path_fails("emails[type eq \"work\"].", 23, "expected an attribute name");
        path_fails("emails[type eq \"work\"]x", 22, "trailing input 'x'");
        path_fails("emails x", 7, "trailing input");
        path_fails("a[b[c pr]]", 3, "value filters cannot be nested");
        path_fails("emails[type eq \"work\"", 21, "missing ']'");
    }

    #[test]
    fn nesting_and_size_are_capped() {
        let deep = format!("{}a pr{}", "(".repeat(100_000), ")".repeat(100_000));
        fails(&deep, 64, "nest deeper than 64 levels");
        fails(&"not (".repeat(100_000), 324, "nest deeper than 64 levels");
        let ok = format!("{}a pr{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(parse(&ok), pr("a"));
        let chain = vec!["a pr"; 100_000].join(" or ");
        fails(&chain, 256 * 8, "more than 256 attribute expressions");
    }

    /// The deepest accepted input must parse, clone, compare, print and drop within half of
    /// tokio's default 2 MiB worker stack even unoptimized (release needs under 128 KiB).
    #[test]
    fn largest_trees_fit_a_small_stack() {
        let chain = format!("{}{}", "not (".repeat(63), vec!["a pr"; MAX_TERMS].join(" or ")) + &")".repeat(63);
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                let filter = parse_filter(&chain).expect("within limits");
                let copy = filter.clone();
                assert_eq!(copy, filter);
                assert!(format!("{filter:?}").len() > chain.len());
                assert_eq!(parse_filter(&filter.to_string()), Ok(copy));
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
    }

    fn attr_name_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
            1 => prop::sample::select(vec!["$ref", "not", "and", "or", "pr", "eq", "true", "urn"])
                .prop_map(String::from),
        ]
    }

    fn attr_path_strategy() -> impl Strategy<Value = AttrPath> {
        let urn = prop_oneof![
            4 => Just(None),
            1 => Just(Some("urn:ietf:params:scim:schemas:core:2.0:User".to_string())),
            1 => "(urn|URN):[a-zA-Z0-9.:_~-]{1,12}".prop_map(Some),
        ];
        (urn, attr_name_strategy(), prop::option::of(attr_name_strategy())).prop_map(|(urn, name, sub_attr)| AttrPath {
            urn,
            name,
            sub_attr,
        })
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let hostile = prop::sample::select(vec![
            "*)(uid=*",
            "\u{0}",
            "\"",
            "\\",
            "\\\"",
            "a\" or b pr",
            "]) or (",
            "\u{2028}\u{fffd}😀",
            "\\u0000",
            "",
        ]);
        prop_oneof![
            any::<String>().prop_map(Value::from),
            hostile.prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn filter_strategy(allow_value_path: bool) -> BoxedStrategy<Filter> {
        let op = prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ]);
        let leaf = prop_oneof![
            (attr_path_strategy(), op, value_strategy()).prop_map(|(path, op, value)| Filter::Compare {
                path,
                op,
                value
            }),
            attr_path_strategy().prop_map(Filter::Present),
        ];
        leaf.prop_recursive(4, 24, 2, move |inner| {
            let mut choices = vec![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| and(l, r)).boxed(),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| or(l, r)).boxed(),
                inner.clone().prop_map(not).boxed(),
            ];
            if allow_value_path {
                choices.push((attr_path_strategy(), filter_strategy(false)).prop_map(|(p, f)| vp(p, f)).boxed());
            }
            prop::strategy::Union::new(choices)
        })
        .boxed()
    }

    /// Fragments that exercise the grammar's edges much more often than random text does.
    fn soup_strategy() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "(", ")", "[", "]", " ", "\t", "\"", "\\", "\\u", "d800", "dc00", "\\ud800", "and", "or", "not", "NOT (",
            "eq", "pr", "gt", "true", "null", "urn:", ":", ".", "$ref", "1", "-", "e", "0.", "E+", "a", "é", "😀",
            "\u{0}", "userName", "emails",
        ]);
        prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    fn check_no_panic(input: &str) {
        let len = input.chars().count();
        match parse_filter(input) {
            Ok(f) => assert_eq!(parse_filter(&f.to_string()), Ok(f)),
            Err(e) => assert!(e.position <= len, "{input:?}: {e}"),
        }
        match parse_path(input) {
            Ok(p) => assert_eq!(parse_path(&p.to_string()), Ok(p)),
            Err(e) => assert!(e.position <= len, "{input:?}: {e}"),
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(filter in filter_strategy(true)) {
            prop_assert_eq!(parse_filter(&filter.to_string()), Ok(filter));
        }

        #[test]
        fn patch_path_display_round_trips(
            attr in attr_path_strategy(),
            filter in prop::option::of(filter_strategy(false)),
            sub_attr in prop::option::of(attr_name_strategy()),
        ) {
            let sub_attr = filter.as_ref().and(sub_attr);
            let path = PatchPath { attr, filter, sub_attr };
            prop_assert_eq!(parse_path(&path.to_string()), Ok(path));
        }

        #[test]
        fn arbitrary_text_never_panics(input in any::<String>()) {
            check_no_panic(&input);
        }

        #[test]
        fn token_soup_never_panics(input in soup_strategy()) {
            check_no_panic(&input);
        }
    }
}
