//! How a value is shaped on its way into the directory: case, whitespace and ASCII
//! transforms, regex replacement, the characters and length an attribute can hold, defaults,
//! and templates built from several SCIM values.

use regex::Regex;

use super::Rule;

/// One step applied to a value on write.
#[derive(Debug, Clone)]
pub enum Transform {
    Lower,
    Upper,
    Trim,
    /// `Zoë Šťastná` → `Zoe Stastna`, `Straße` → `Strasse`: for attributes (Unix logins,
    /// pre-Windows 2000 names) that people type on any keyboard.
    Ascii,
    Replace(Regex, String),
}

impl Transform {
    pub fn parse(name: &str) -> Result<Transform, String> {
        match name.to_ascii_lowercase().as_str() {
            "lower" => Ok(Transform::Lower),
            "upper" => Ok(Transform::Upper),
            "trim" => Ok(Transform::Trim),
            "ascii" => Ok(Transform::Ascii),
            other => {
                Err(format!("unknown transform {other:?}: use lower, upper, trim or ascii (and `replace` for regexes)"))
            }
        }
    }

    pub fn replace(pattern: &str, with: &str) -> Result<Transform, String> {
        let re = Regex::new(pattern).map_err(|e| format!("replace pattern {pattern:?}: {e}"))?;
        Ok(Transform::Replace(re, with.to_owned()))
    }

    fn apply(&self, v: String) -> String {
        match self {
            Transform::Lower => v.to_lowercase(),
            Transform::Upper => v.to_uppercase(),
            Transform::Trim => v.trim().to_owned(),
            // Transliteration tables (deunicode) rather than dropping accents after NFKD
            // decomposition, which leaves ß, ø, Ł, æ and every non-Latin script untouched.
            // What has no transliteration (private-use characters) is dropped, not written as "[?]".
            Transform::Ascii => deunicode::deunicode_with_tofu(&v, ""),
            Transform::Replace(re, with) => re.replace_all(&v, with.as_str()).into_owned(),
        }
    }
}

/// The characters an attribute can hold (`characters = {…}`): others are replaced or dropped.
#[derive(Debug, Clone)]
pub struct Characters {
    set: CharSet,
    replacement: String,
    not_at_end: Vec<char>,
}

#[derive(Debug, Clone)]
enum CharSet {
    Forbidden(Vec<char>),
    /// Inclusive ranges; a single character is a range of one.
    Allowed(Vec<(char, char)>),
}

impl Characters {
    pub fn new(rule: &crate::config::CharacterRule) -> Result<Characters, String> {
        let set = match (&rule.forbidden, &rule.allowed) {
            (Some(f), None) => CharSet::Forbidden(f.chars().collect()),
            (None, Some(a)) => CharSet::Allowed(ranges(a)?),
            _ => return Err("characters needs exactly one of forbidden and allowed".into()),
        };
        let c =
            Characters { set, replacement: rule.replacement.clone(), not_at_end: rule.not_at_end.chars().collect() };
        if !c.replacement.chars().all(|ch| c.holds(ch)) {
            return Err(format!("the replacement {:?} holds characters the rule refuses", c.replacement));
        }
        Ok(c)
    }

    /// Control characters are never held: no directory attribute wants them in a name.
    fn holds(&self, c: char) -> bool {
        !c.is_control()
            && match &self.set {
                CharSet::Forbidden(f) => !f.contains(&c),
                CharSet::Allowed(ranges) => ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)),
            }
    }

    fn apply(&self, v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        for c in v.chars() {
            match self.holds(c) {
                true => out.push(c),
                false => out.push_str(&self.replacement),
            }
        }
        out
    }

    fn trim_end<'a>(&self, v: &'a str) -> &'a str {
        v.trim_end_matches(self.not_at_end.as_slice())
    }
}

/// `"a-z0-9._-"` as ranges: `x-y` is a range, a `-` first or last is the character itself.
fn ranges(spec: &str) -> Result<Vec<(char, char)>, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            let (lo, hi) = (chars[i], chars[i + 2]);
            if lo > hi {
                return Err(format!("{lo}-{hi} in allowed {spec:?} is not a range"));
            }
            out.push((lo, hi));
            i += 3;
        } else {
            out.push((chars[i], chars[i]));
            i += 1;
        }
    }
    if out.is_empty() {
        return Err("allowed needs at least one character".into());
    }
    Ok(out)
}

/// The first `max` characters of `v`: counted as Unicode scalar values, so a cut never falls
/// inside a UTF-8 sequence.
fn truncate(v: &str, max: usize) -> &str {
    match v.char_indices().nth(max) {
        Some((at, _)) => &v[..at],
        None => v,
    }
}

/// What happens to a value on write: transforms in order, the regex replacement, the
/// character rule, the length limit, then a default for "no value".
#[derive(Debug, Clone, Default)]
pub struct Steps {
    pub transforms: Vec<Transform>,
    pub characters: Option<Characters>,
    pub max_length: Option<usize>,
    pub default: Option<String>,
}

impl Steps {
    /// The value to write for `value`: transformed, or the default when there is none.
    pub fn apply(&self, value: Option<String>) -> Option<String> {
        value.map(|v| self.shape(v)).filter(|v| !v.is_empty()).or_else(|| self.default.clone())
    }

    /// Everything but the default.
    pub fn shape(&self, value: String) -> String {
        let v = self.transforms.iter().fold(value, |v, t| t.apply(v));
        let v = match &self.characters {
            Some(c) => c.apply(&v),
            None => v,
        };
        self.fit(&v, "").unwrap_or_default()
    }

    /// `base` cut so that `base` + `suffix` stays within the length limit, without a character
    /// the value may not end with; `None` when the suffix alone is too long.
    pub fn fit(&self, base: &str, suffix: &str) -> Option<String> {
        let room = match self.max_length {
            Some(max) => max.checked_sub(suffix.chars().count())?,
            None => usize::MAX,
        };
        let mut base = truncate(base, room);
        if let Some(c) = &self.characters {
            base = c.trim_end(base);
        }
        Some(format!("{base}{suffix}"))
    }
}

/// A part of a template: literal text, a SCIM value (looked up like a rule's), or the value
/// another rule writes into an LDAP attribute (`{ldap:uid}`: `/home/{ldap:uid}` follows the
/// uid a unique rule chose).
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Value(Box<Rule>),
    Attr(String),
}

/// `"{name.givenName} {name.familyName}"` split into pieces; `{{` and `}}` are literal braces.
pub fn parse_template(text: &str, compile: impl Fn(&str) -> Result<Rule, String>) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let path: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if path.trim().is_empty() {
                    return Err(format!("empty {{}} in template {text:?}"));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                match path.trim().strip_prefix("ldap:") {
                    Some(attr) if super::valid_ldap_name(attr.trim()) => pieces.push(Piece::Attr(attr.trim().into())),
                    Some(attr) => return Err(format!("{attr:?} in template {text:?} is not an LDAP attribute name")),
                    None => pieces.push(Piece::Value(Box::new(compile(path.trim())?))),
                }
            }
            '}' => return Err(format!("unmatched }} in template {text:?}: write }}}} for a brace")),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Joins the pieces, with missing values left out and the spaces around them folded, so
/// `"{givenName} {familyName}"` gives `"Doe"` rather than `" Doe"`. `attr` gives the value
/// written into an LDAP attribute.
pub fn render(
    pieces: &[Piece],
    value_of: impl Fn(&Rule) -> Option<String>,
    attr: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Value(rule) => out.push_str(&value_of(rule).unwrap_or_default()),
            Piece::Attr(name) => out.push_str(&attr(name).unwrap_or_default()),
        }
    }
    let folded = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (!folded.is_empty()).then_some(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::compile_rule;
    use crate::scim::USER_SCHEMA;

    #[test]
    fn steps_shape_values() {
        let steps = Steps {
            transforms: vec![Transform::Trim, Transform::Lower, Transform::replace("@.*$", "").unwrap()],
            default: Some("nobody".into()),
            ..Steps::default()
        };
        assert_eq!(steps.apply(Some("  JDoe@Example.com ".into())).as_deref(), Some("jdoe"));
        assert_eq!(steps.apply(None).as_deref(), Some("nobody"));
        assert_eq!(steps.apply(Some("@only".into())).as_deref(), Some("nobody"), "emptied values count as none");
        assert!(Transform::parse("shout").is_err());
        assert!(Transform::replace("(", "").is_err());
    }

    fn rule(text: &str) -> crate::config::CharacterRule {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn cuts_count_characters_never_bytes() {
        let steps = Steps { max_length: Some(3), ..Steps::default() };
        // 2-, 3- and 4-byte UTF-8 sequences: the cut falls between characters.
        assert_eq!(steps.shape("éèêë".into()), "éèê");
        assert_eq!(steps.shape("日本語です".into()), "日本語");
        assert_eq!(steps.shape("😀😁😂🤣".into()), "😀😁😂");
        assert_eq!(steps.shape("ab".into()), "ab");
        assert_eq!(steps.fit("日本語", "1").as_deref(), Some("日本1"));
        assert_eq!(steps.fit("abc", "1234"), None, "a suffix longer than the limit");
        assert_eq!(Steps::default().fit("abc", "12").as_deref(), Some("abc12"));
    }

    #[test]
    fn ascii_folding() {
        let ascii = Steps { transforms: vec![Transform::Ascii], ..Steps::default() };
        assert_eq!(ascii.shape("Zoë".into()), "Zoe");
        assert_eq!(ascii.shape("Łukasz Żółć".into()), "Lukasz Zolc");
        assert_eq!(ascii.shape("Straße Ærø".into()), "Strasse AEro");
        assert_eq!(ascii.shape("José\u{e000}".into()), "Jose", "no transliteration: dropped, not [?]");
        assert!(ascii.shape("Иван 北京".into()).is_ascii());
    }

    #[test]
    fn character_rules() {
        let sam = Characters::new(&rule("forbidden = '\"/\\[]:;|=,+*?<>@'\nnot_at_end = \".\"\nreplacement = \"_\""))
            .unwrap();
        let steps = Steps { characters: Some(sam), max_length: Some(8), ..Steps::default() };
        assert_eq!(steps.shape("a+b@c\\d".into()), "a_b_c_d");
        assert_eq!(steps.shape("ab\u{7}cd".into()), "ab_cd", "control characters are never held");
        assert_eq!(steps.shape("abcdefg.hij".into()), "abcdefg", "no dot at the end, also after a cut");
        assert_eq!(steps.shape("a...".into()), "a");
        let posix = Characters::new(&rule("allowed = \"a-z0-9._-\"")).unwrap();
        let steps = Steps { characters: Some(posix), ..Steps::default() };
        assert_eq!(steps.shape("jane o'neil-x_1.Z".into()), "janeoneil-x_1.");
        assert!(Characters::new(&rule("allowed = \"a-z\"\nreplacement = \"_\"")).is_err());
        assert!(Characters::new(&rule("allowed = \"-\"")).is_ok(), "a lone - is itself");
        assert!(Characters::new(&rule("")).is_err());
    }

    #[test]
    fn templates() {
        let compile = |p: &str| compile_rule(p, "cn", USER_SCHEMA);
        let pieces = parse_template("{name.givenName} {name.familyName} {{x}}", compile).unwrap();
        assert_eq!(pieces.len(), 4);
        let full = |r: &Rule| Some(r.target.sub.clone().unwrap());
        assert_eq!(render(&pieces, full, |_| None).as_deref(), Some("givenName familyName {x}"));
        let some = |r: &Rule| (r.target.sub.as_deref() == Some("familyName")).then(|| "Doe".to_string());
        assert_eq!(render(&pieces[..3], some, |_| None).as_deref(), Some("Doe"));
        assert_eq!(render(&pieces[..3], |_| None, |_| None), None);
        assert!(parse_template("{nope}", compile).is_err());
        assert!(parse_template("{}", compile).is_err());
        assert!(parse_template("a } b", compile).is_err());
    }
}
