//! ldap3 errors and LDAP result codes (RFC 4511 Appendix A) → [`DirectoryError`].

use ldap3::{LdapError, LdapResult};

use crate::directory::DirectoryError;

pub fn from_ldap(e: LdapError) -> DirectoryError {
    match e {
        LdapError::LdapResult { result } => from_result(result),
        e @ (LdapError::Io { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::Timeout { .. }
        | LdapError::EndOfStream
        | LdapError::Rustls { .. }) => DirectoryError::Unavailable(e.to_string()),
        e => DirectoryError::Other { code: 80, text: e.to_string() },
    }
}

pub fn from_result(r: LdapResult) -> DirectoryError {
    let (rc, said) = (r.rc, !r.text.is_empty());
    let text = if said { r.text } else { format!("result code {rc}") };
    // A refusal of the data names its LDAP result code for the operator; the code itself
    // stays in LDAP terms for provision.
    let rejected = |code, text: String| {
        let text = if said { format!("{text} (LDAP result {rc})") } else { text };
        DirectoryError::Rejected { code, text }
    };
    match rc {
        4 => DirectoryError::SizeLimit,
        32 => DirectoryError::NoSuchEntry,
        // Samba refuses a duplicate sAMAccountName with entryAlreadyExists too, and names it:
        // "samldb: samAccountName 'x' already in use!", or "sAMAccountName 'x' is already in use
        // (implied by userPrincipalName)". The DN is free then.
        68 if text.to_ascii_lowercase().contains("samaccountname") => DirectoryError::NotUnique(text),
        68 => DirectoryError::AlreadyExists,
        50 => DirectoryError::AccessDenied(text),
        // confidentialityRequired: 389-ds takes passwords only over TLS. A setting to fix, not a retry.
        13 => DirectoryError::Unsupported(format!(
            "the directory requires an encrypted connection for this ({text}): use ldaps:// or starttls = true in [directory]"
        )),
        // busy, unavailable, unwilling-because-shutting-down, other transient states
        3 | 51 | 52 => DirectoryError::Unavailable(text),
        // OpenLDAP's unique overlay: constraintViolation, "non-unique attributes found with
        // (|(uid=…))" or "some attributes not unique".
        // Active Directory: "0000202F: samldb: userPrincipalName 'x' is already in use".
        19 if text.contains("unique") || text.contains("already in use") => DirectoryError::NotUnique(text),
        // Active Directory's password policy: "0000052D: Constraint violation - check_password_restrictions:
        // the password is too short…" (Samba) or "0000052D: SvcErr: … problem 5003" (Windows).
        19 | 53 if text.contains("0000052D") => DirectoryError::PasswordPolicy(text),
        // AD refuses to remove a non-member with unwillingToPerform: Windows says 00000561
        // (ERROR_MEMBER_NOT_IN_GROUP), Samba "Attribute member already deleted". That is
        // noSuchAttribute's meaning.
        53 if text.contains("00000561") || text.contains("already deleted") => rejected(16, text),
        // schema, syntax, constraint and naming problems: the data was refused
        16..=21 | 34 | 53 | 64..=67 | 69 => rejected(rc, text),
        code => DirectoryError::Other { code, text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rc: u32, text: &str) -> LdapResult {
        LdapResult { rc, matched: String::new(), text: text.into(), refs: vec![], ctrls: vec![] }
    }

    #[test]
    fn a_refusal_names_its_result_code_once() {
        let e = from_result(result(21, "mail: value #0 invalid per syntax"));
        assert_eq!(
            e.to_string(),
            "the directory refused the change: mail: value #0 invalid per syntax (LDAP result 21)"
        );
        let e = from_result(result(65, ""));
        assert_eq!(e.to_string(), "the directory refused the change: result code 65");
        let member = from_result(result(53, "Attribute member already deleted"));
        assert!(matches!(member, DirectoryError::Rejected { code: 16, .. }), "{member}");
        assert!(member.to_string().ends_with("(LDAP result 53)"), "{member}");
    }

    #[test]
    fn uniqueness_is_told_from_other_constraints() {
        for text in ["non-unique attributes found with (|(uid=a))", "some attributes not unique"] {
            assert!(matches!(from_result(result(19, text)), DirectoryError::NotUnique(_)), "{text}");
        }
        assert!(matches!(
            from_result(result(19, "Password fails quality checking policy")),
            DirectoryError::Rejected { .. }
        ));
        assert!(matches!(from_result(result(68, "")), DirectoryError::AlreadyExists));
        let sam = "00002071: samldb: samAccountName 'sam' already in use!";
        assert!(matches!(from_result(result(68, sam)), DirectoryError::NotUnique(_)));
        let upn = "0000202F: samldb: userPrincipalName 'u1@example.test' is already in use";
        assert!(matches!(from_result(result(19, upn)), DirectoryError::NotUnique(_)));
        let policy = "0000052D: Constraint violation - check_password_restrictions: the password is too short.";
        assert!(matches!(from_result(result(19, policy)), DirectoryError::PasswordPolicy(t) if t == policy));
        assert!(matches!(from_result(result(52, "")), DirectoryError::Unavailable(_)));
        let tls = from_result(result(13, "Operation requires a secure connection"));
        assert!(matches!(&tls, DirectoryError::Unsupported(t) if t.contains("starttls = true")), "{tls}");
    }
}
