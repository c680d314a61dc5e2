//! A strict reader of the OpenMetrics text that `/metrics` serves: every line must be a
//! descriptor, a sample or the final `# EOF`, and histograms must be consistent.

use std::collections::BTreeMap;

pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub struct Scrape {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        assert!(text.ends_with("# EOF\n"), "no final # EOF:\n{text}");
        let mut samples = Vec::new();
        for line in text.lines().take_while(|l| *l != "# EOF") {
            if let Some(descriptor) = line.strip_prefix("# ") {
                let mut words = descriptor.splitn(3, ' ');
                let (kind, name, rest) = (words.next(), words.next().unwrap_or(""), words.next().unwrap_or(""));
                assert!(matches!(kind, Some("HELP" | "TYPE" | "UNIT")) && metric_name(name), "bad line {line:?}");
                if kind == Some("TYPE") {
                    assert!(["counter", "gauge", "histogram", "info", "unknown"].contains(&rest), "type {line:?}");
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect("closing }"), line)),
            };
            assert!(metric_name(name), "bad name in {line:?}");
            samples.push(Sample { name: name.to_owned(), labels, value });
        }
        let scrape = Scrape { samples, text: text.to_owned() };
        scrape.check_histograms();
        scrape
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    pub fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples
            .iter()
            .filter(move |s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
    }

    /// Each histogram series: buckets never decrease, and `+Inf` holds `_count`.
    fn check_histograms(&self) {
        for count in self.samples.iter().filter(|s| s.name.ends_with("_count")) {
            let base = count.name.trim_end_matches("_count");
            let bucket_name = format!("{base}_bucket");
            let buckets: Vec<&Sample> = self
                .samples
                .iter()
                .filter(|b| {
                    b.name == bucket_name && b.labels.iter().filter(|(k, _)| *k != "le").eq(count.labels.iter())
                })
                .collect();
            assert!(!buckets.is_empty(), "{base} has no buckets");
            assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value), "{base}: buckets decrease");
            let last = buckets.last().unwrap();
            assert_eq!(last.labels["le"], "+Inf");
            assert_eq!(last.value, count.value, "{base}: +Inf bucket differs from _count");
        }
    }
}

fn metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y\"z"`
fn labels(mut rest: &str, line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels in {line:?}"));
        assert!(metric_name(key), "bad label name in {line:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => panic!("bad escape in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        out.insert(key.to_owned(), value);
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    out
}
