//! LDIF (RFC 2849) for the operations a request would perform, as `scim-gateway explain`
//! prints them.

use base64::Engine;

use super::Change;

/// One write, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Add {
        dn: String,
        attrs: Vec<(String, Vec<String>)>,
    },
    Modify {
        dn: String,
        changes: Vec<Change>,
    },
    Rename {
        dn: String,
        new_rdn: String,
    },
    Delete {
        dn: String,
    },
    /// The value is never kept: it is a password.
    SetPassword {
        dn: String,
    },
}

/// `name: value`, or `name:: base64` where RFC 2849 does not allow the value as is.
fn line(name: &str, value: &str) -> String {
    let safe = !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && value.bytes().all(|b| b.is_ascii() && b != b'\0' && b != b'\n' && b != b'\r');
    if safe {
        format!("{name}: {value}\n")
    } else {
        format!("{name}:: {}\n", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

impl Write {
    pub fn to_ldif(&self) -> String {
        match self {
            Write::Add { dn, attrs } => {
                let mut out = line("dn", dn) + "changetype: add\n";
                for (a, values) in attrs {
                    out.extend(values.iter().map(|v| line(a, v)));
                }
                out
            }
            Write::Modify { dn, changes } => {
                let mut out = line("dn", dn) + "changetype: modify\n";
                let mut put = |op: &str, attr: &str, values: &[String]| {
                    out += &format!("{op}: {attr}\n");
                    out.extend(values.iter().map(|v| line(attr, v)));
                    out += "-\n";
                };
                for c in changes {
                    match c {
                        Change::Add(a, v) => put("add", a, v),
                        Change::Delete(a, v) => put("delete", a, v),
                        Change::Replace(a, v) => put("replace", a, v),
                        Change::Swap(a, old, new) => {
                            put("delete", a, std::slice::from_ref(old));
                            put("add", a, std::slice::from_ref(new));
                        }
                    }
                }
                out
            }
            Write::Rename { dn, new_rdn } => line("dn", dn) + "changetype: modrdn\n" + &line("newrdn", new_rdn) + "deleteoldrdn: 1\n",
            Write::Delete { dn } => line("dn", dn) + "changetype: delete\n",
            Write::SetPassword { dn } => format!(
                "# Password Modify extended operation (RFC 3062) on {dn}: the directory hashes the new password (not shown)\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_ldif() {
        let add = Write::Add {
            dn: "uid=a,dc=x".into(),
            attrs: vec![("cn".into(), vec!["Zoë".into(), " lead".into(), "ok".into()])],
        };
        assert_eq!(add.to_ldif(), "dn: uid=a,dc=x\nchangetype: add\ncn:: Wm/Dqw==\ncn:: IGxlYWQ=\ncn: ok\n");
        let m = Write::Modify {
            dn: "uid=a,dc=x".into(),
            changes: vec![Change::Replace("sn".into(), vec!["B".into()]), Change::Delete("title".into(), vec![])],
        };
        assert_eq!(m.to_ldif(), "dn: uid=a,dc=x\nchangetype: modify\nreplace: sn\nsn: B\n-\ndelete: title\n-\n");
        let r = Write::Rename { dn: "uid=a,dc=x".into(), new_rdn: "uid=b".into() };
        assert_eq!(r.to_ldif(), "dn: uid=a,dc=x\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 1\n");
        assert!(!Write::SetPassword { dn: "uid=a".into() }.to_ldif().contains("secret"));
    }
}
