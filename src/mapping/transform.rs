//! How a value is shaped on its way into the directory: case and whitespace transforms,
//! regex replacement, defaults, and templates built from several SCIM values.

use regex::Regex;

use super::Rule;

/// One step applied to a value on write.
#[derive(Debug, Clone)]
pub enum Transform {
    Lower,
    Upper,
    Trim,
    Replace(Regex, String),
}

impl Transform {
    pub fn parse(name: &str) -> Result<Transform, String> {
        match name.to_ascii_lowercase().as_str() {
            "lower" => Ok(Transform::Lower),
            "upper" => Ok(Transform::Upper),
            "trim" => Ok(Transform::Trim),
            other => Err(format!("unknown transform {other:?}: use lower, upper or trim (and `replace` for regexes)")),
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
            Transform::Replace(re, with) => re.replace_all(&v, with.as_str()).into_owned(),
        }
    }
}

/// What happens to a value on write: transforms in order, then a default for "no value".
#[derive(Debug, Clone, Default)]
pub struct Steps {
    pub transforms: Vec<Transform>,
    pub default: Option<String>,
}

impl Steps {
    /// The value to write for `value`: transformed, or the default when there is none.
    pub fn apply(&self, value: Option<String>) -> Option<String> {
        value.map(|v| self.shape(v)).filter(|v| !v.is_empty()).or_else(|| self.default.clone())
    }

    /// The transforms alone.
    pub fn shape(&self, value: String) -> String {
        self.transforms.iter().fold(value, |v, t| t.apply(v))
    }
}

/// A part of a template: literal text or a SCIM value (looked up like a rule's).
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Value(Box<Rule>),
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
                pieces.push(Piece::Value(Box::new(compile(path.trim())?)));
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
/// `"{givenName} {familyName}"` gives `"Doe"` rather than `" Doe"`.
pub fn render(pieces: &[Piece], value_of: impl Fn(&Rule) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Value(rule) => out.push_str(&value_of(rule).unwrap_or_default()),
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
        };
        assert_eq!(steps.apply(Some("  JDoe@Example.com ".into())).as_deref(), Some("jdoe"));
        assert_eq!(steps.apply(None).as_deref(), Some("nobody"));
        assert_eq!(steps.apply(Some("@only".into())).as_deref(), Some("nobody"), "emptied values count as none");
        assert!(Transform::parse("shout").is_err());
        assert!(Transform::replace("(", "").is_err());
    }

    #[test]
    fn templates() {
        let compile = |p: &str| compile_rule(p, "cn", USER_SCHEMA);
        let pieces = parse_template("{name.givenName} {name.familyName} {{x}}", compile).unwrap();
        assert_eq!(pieces.len(), 4);
        let full = |r: &Rule| Some(r.target.sub.clone().unwrap());
        assert_eq!(render(&pieces, full).as_deref(), Some("givenName familyName {x}"));
        let some = |r: &Rule| (r.target.sub.as_deref() == Some("familyName")).then(|| "Doe".to_string());
        assert_eq!(render(&pieces[..3], some).as_deref(), Some("Doe"));
        assert_eq!(render(&pieces[..3], |_| None), None);
        assert!(parse_template("{nope}", compile).is_err());
        assert!(parse_template("{}", compile).is_err());
        assert!(parse_template("a } b", compile).is_err());
    }
}
