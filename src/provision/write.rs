//! A write as an explicit sequence of directory operations, run by one piece of code.
//!
//! An LDAP directory has no transactions: a request that needs a rename, a modify and a
//! password is three operations, any of which can fail or go unanswered. So every write is
//! first planned as [`Step`]s in a fixed order, then [`Sequence::run`] executes them one by one
//! and records which landed. When a step fails, the steps before it are undone in reverse
//! order, so the directory is left as it was, and the audit line is written from the record,
//! whether the request succeeds or fails.
//!
//! Order: a step that cannot be undone (a password, a delete) comes after every step that
//! can ([`Sequence::then`] refuses otherwise), so nothing irreversible happens unless all the
//! rest did.
//!
//! An operation whose answer never came (timeout, dropped connection) may or may not have
//! landed. It is undone as if it had: every undo tolerates finding its step not done. A
//! password, which cannot be undone, is sent again instead (setting the same one twice
//! changes nothing); a delete is checked by reading the entry. Undos and passwords the
//! directory does not answer are tried a few times ([`RETRY_ATTEMPTS`]).

use super::store::{modify, StandIn};
use super::{Error, Result};
use crate::directory::{dn, Attributes, Binary, Change, Directory, DirectoryError};

/// One directory operation of a write, with what undoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new entry (with its password, set by the directory adapter in the same unit).
    /// Undo: delete it.
    Add { dn: String, attrs: Attributes, binary: Binary, password: Option<String> },
    /// modrdn of `dn` to `rdn`, in place. Undo: rename back to `back`.
    Rename { dn: String, rdn: String, back: String },
    /// One modify ([`modify`]: idempotent for member values). Undo: `undo`, the same way.
    Modify { dn: String, changes: Vec<Change>, undo: Vec<Change>, stand_in: Option<(String, String)> },
    /// Cannot be undone: only after every step that can.
    Password { dn: String, password: String },
    /// A modify that must follow the password (Active Directory enables an account only once
    /// it has one), and so cannot be undone either: the password before it stays.
    Enable { dn: String, changes: Vec<Change> },
    /// Cannot be undone: only after every step that can. An entry already gone counts as deleted.
    Delete { dn: String },
}

impl Step {
    fn reversible(&self) -> bool {
        !matches!(self, Step::Password { .. } | Step::Enable { .. } | Step::Delete { .. })
    }

    /// The attribute names this step writes, for the audit line (never a value).
    fn attributes(&self) -> Vec<String> {
        match self {
            Step::Add { attrs, binary, password, .. } => attrs
                .iter()
                .map(|(a, _)| a.clone())
                .chain(binary.iter().map(|(a, _)| a.clone()))
                .chain(password.as_ref().map(|_| PASSWORD.to_owned()))
                .collect(),
            Step::Rename { rdn, .. } => vec![rdn.split('=').next().unwrap_or_default().to_owned()],
            Step::Modify { changes, .. } | Step::Enable { changes, .. } => {
                changes.iter().map(|c| c.attr().to_owned()).collect()
            }
            Step::Password { .. } => vec![PASSWORD.to_owned()],
            Step::Delete { .. } => Vec::new(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Step::Add { .. } => "add",
            Step::Rename { .. } => "rename",
            Step::Modify { .. } => "modify",
            Step::Password { .. } => "password",
            Step::Enable { .. } => "enable",
            Step::Delete { .. } => "delete",
        }
    }
}

/// How a password change shows in the audit line: by name, as every attribute does.
pub const PASSWORD: &str = "password";

/// The changes that put back what `changes` change, given the entry's values before
/// (`before(attr)`). Applied as one modify, in reverse order.
pub fn undo_of(
    changes: &[Change],
    before: impl Fn(&str) -> Vec<String>,
    bytes: impl Fn(&str) -> Vec<Vec<u8>>,
) -> Vec<Change> {
    changes
        .iter()
        .rev()
        .map(|c| match c {
            Change::Replace(a, _) => Change::Replace(a.clone(), before(a)),
            Change::Add(a, v) => Change::Delete(a.clone(), v.clone()),
            Change::Delete(a, v) if v.is_empty() => Change::Replace(a.clone(), before(a)),
            Change::Delete(a, v) => Change::Add(a.clone(), v.clone()),
            Change::Binary(a, _) => Change::Binary(a.clone(), bytes(a)),
            Change::Swap(a, old, new) => Change::Swap(a.clone(), new.clone(), old.clone()),
        })
        .collect()
}

/// What became of a plan: the steps that landed and stay, and whether the directory is back
/// as it was after a failure (`undone`) or holds a part (`partial`, an undo failed too).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The steps that landed and were not undone, in order (by name), with their attributes.
    pub kept: Vec<(&'static str, Vec<String>)>,
    /// Steps that landed, then were undone after a later step failed.
    pub undone: Vec<&'static str>,
    /// Undo steps that failed: the directory holds part of the request.
    pub undo_failed: Vec<&'static str>,
    /// The DN the entry has at the end.
    pub dn: String,
}

impl Record {
    /// `written` (everything landed), `undone`, `partial`, or `None` when nothing ever landed.
    pub fn outcome(&self, failed: bool) -> Option<&'static str> {
        match (failed, self.undo_failed.is_empty(), self.kept.is_empty() && self.undone.is_empty()) {
            (_, false, _) => Some("partial"),
            (false, true, _) => Some("written"),
            (true, true, true) => None,
            (true, true, false) => match self.kept.is_empty() {
                true => Some("undone"),
                // Kept steps after a failure: the password went out, its answer did not come back.
                false => Some("partial"),
            },
        }
    }

    /// The attribute names of the steps that stay, de-duplicated.
    pub fn attributes(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let all = self.kept.iter().flat_map(|(_, a)| a.iter().cloned());
        all.filter(|a| seen.insert(a.to_ascii_lowercase())).collect()
    }
}

/// A sequence of steps, checked for order as it is built.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sequence {
    steps: Vec<Step>,
}

impl Sequence {
    pub fn new() -> Sequence {
        Sequence::default()
    }

    /// Appends `step`. Panics (a bug in the planner, caught by the unit tests) when a step
    /// that can be undone would follow one that cannot.
    pub fn then(mut self, step: Step) -> Sequence {
        assert!(
            !step.reversible() || self.steps.iter().all(Step::reversible),
            "a {} step after an irreversible one",
            step.name()
        );
        self.steps.push(step);
        self
    }

    /// Runs the steps in order. On a failure, undoes what landed (in reverse) and returns
    /// the error with the record; the record is also what the audit line is written from.
    pub async fn run(&self, dir: &dyn Directory, start_dn: &str) -> (Record, Result<()>) {
        let mut record = Record { dn: start_dn.to_owned(), ..Record::default() };
        let mut landed: Vec<&Step> = Vec::new();
        for step in &self.steps {
            match execute(dir, step).await {
                Ok(()) => {
                    landed.push(step);
                    record.kept.push((step.name(), step.attributes()));
                    if let Step::Rename { dn, rdn, .. } = step {
                        record.dn = dn::child(rdn, dn::split(dn).1);
                    }
                }
                Err(e) => {
                    // Unanswered: it may have landed, so undo it too (undos tolerate "not done").
                    if unanswered(&e) && step.reversible() {
                        landed.push(step);
                        record.kept.push((step.name(), step.attributes()));
                    }
                    undo(dir, landed, &mut record).await;
                    return (record, Err(e));
                }
            }
        }
        (record, Ok(()))
    }
}

/// Whether the directory may have applied an operation it did not answer.
fn unanswered(e: &Error) -> bool {
    matches!(e, Error::Directory(DirectoryError::Unavailable(_)))
}

async fn execute(dir: &dyn Directory, step: &Step) -> Result<()> {
    match step {
        Step::Add { dn, attrs, binary, password } => Ok(dir.add(dn, attrs, binary, password.as_deref()).await?),
        Step::Rename { dn, rdn, .. } => Ok(dir.rename(dn, rdn).await.map_err(|e| match e {
            DirectoryError::AlreadyExists => Error::Uniqueness(format!("an entry named {rdn} already exists")),
            e => e.into(),
        })?),
        Step::Modify { dn, changes, stand_in, .. } => modify(dir, dn, changes.clone(), stand_in_of(stand_in)).await,
        Step::Enable { dn, changes } => modify(dir, dn, changes.clone(), None).await,
        // Sent again when unanswered: the same password twice is one change.
        Step::Password { dn, password } => {
            let mut result = dir.set_password(dn, password).await;
            for _ in 1..RETRY_ATTEMPTS {
                if !matches!(result, Err(DirectoryError::Unavailable(_))) {
                    break;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                result = dir.set_password(dn, password).await;
            }
            Ok(result?)
        }
        Step::Delete { dn } => match dir.delete(dn).await {
            Ok(()) | Err(DirectoryError::NoSuchEntry) => Ok(()),
            // Unanswered: read whether it is gone.
            Err(e @ DirectoryError::Unavailable(_)) => match dir.compare(dn, "objectClass", "top").await {
                Err(DirectoryError::NoSuchEntry) => Ok(()),
                _ => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        },
    }
}

fn stand_in_of(s: &Option<(String, String)>) -> StandIn<'_> {
    s.as_ref().map(|(a, v)| (a.as_str(), v.as_str()))
}

/// Undoes `landed` in reverse, moving each from `kept` to `undone` (or `undo_failed`).
async fn undo(dir: &dyn Directory, landed: Vec<&Step>, record: &mut Record) {
    for step in landed.into_iter().rev() {
        let mut result = undo_one(dir, step, record).await;
        // The directory was unreachable a moment ago (that may be why the write failed): an
        // undo is worth a few more tries, each after the pool's reconnect backoff.
        for _ in 1..RETRY_ATTEMPTS {
            if !result.as_ref().is_err_and(unanswered) {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            result = undo_one(dir, step, record).await;
        }
        record.kept.pop();
        match result {
            Ok(()) => record.undone.push(step.name()),
            Err(e) => {
                tracing::error!(step = step.name(), error = %e, "could not undo a step of a failed write");
                record.undo_failed.push(step.name());
                record.kept.push((step.name(), step.attributes()));
            }
        }
    }
}

/// Tries of an undo or a password the directory did not answer, and the pause between them
/// (longer than the pool's first reconnect backoff).
const RETRY_ATTEMPTS: usize = 4;
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

async fn undo_one(dir: &dyn Directory, step: &Step, record: &mut Record) -> Result<()> {
    match step {
        Step::Add { dn, .. } => match dir.delete(dn).await {
            Err(DirectoryError::NoSuchEntry) => Ok(()),
            other => other.map_err(Error::from),
        },
        Step::Rename { dn, rdn, back } => {
            let renamed = dn::child(rdn, dn::split(dn).1);
            match dir.rename(&renamed, back).await {
                Ok(()) => {
                    record.dn = dn.clone();
                    Ok(())
                }
                // Never renamed (the request was lost before it arrived)? The directory may say
                // so in other words (a uniqueness check of the old name comes first in OpenLDAP).
                Err(e) => match dir.compare(&renamed, "objectClass", "top").await {
                    Err(DirectoryError::NoSuchEntry) => Ok(()),
                    _ => Err(e.into()),
                },
            }
        }
        Step::Modify { dn, undo, stand_in, .. } => modify(dir, dn, undo.clone(), stand_in_of(stand_in)).await,
        Step::Password { .. } | Step::Enable { .. } | Step::Delete { .. } => {
            unreachable!("only reversible steps are undone")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modify(changes: Vec<Change>) -> Step {
        Step::Modify { dn: "uid=a,ou=p".into(), changes, undo: vec![], stand_in: None }
    }

    #[test]
    fn irreversible_steps_come_last() {
        let password = Step::Password { dn: "uid=a,ou=p".into(), password: "x".into() };
        let plan = Sequence::new().then(modify(vec![])).then(password.clone());
        assert_eq!(plan.steps.len(), 2);
        let after = std::panic::catch_unwind(|| Sequence::new().then(password.clone()).then(modify(vec![])));
        assert!(after.is_err(), "a modify after the password must be refused");
        let delete = Step::Delete { dn: "uid=a,ou=p".into() };
        assert!(std::panic::catch_unwind(|| Sequence::new().then(delete.clone()).then(modify(vec![]))).is_err());
        // Two irreversible steps may follow each other (nothing reversible comes after).
        Sequence::new().then(password).then(delete);
    }

    #[test]
    fn undo_puts_back_what_was_before() {
        let before = |a: &str| match a {
            "title" => vec!["Old".to_owned()],
            _ => Vec::new(),
        };
        let changes = vec![
            Change::Replace("title".into(), vec!["New".into()]),
            Change::Replace("mobile".into(), vec!["1".into()]),
            Change::Add("member".into(), vec!["a".into()]),
            Change::Delete("member".into(), vec!["b".into()]),
            Change::Delete("title".into(), vec![]),
            Change::Swap("userAccountControl".into(), "514".into(), "512".into()),
            Change::Binary("jpegPhoto".into(), vec![vec![1]]),
        ];
        let undo = undo_of(&changes, before, |_| vec![vec![9]]);
        assert_eq!(
            undo,
            vec![
                Change::Binary("jpegPhoto".into(), vec![vec![9]]),
                Change::Swap("userAccountControl".into(), "512".into(), "514".into()),
                Change::Replace("title".into(), vec!["Old".into()]),
                Change::Add("member".into(), vec!["b".into()]),
                Change::Delete("member".into(), vec!["a".into()]),
                Change::Replace("mobile".into(), vec![]),
                Change::Replace("title".into(), vec!["Old".into()]),
            ]
        );
    }

    #[test]
    fn outcomes() {
        let mut r = Record::default();
        assert_eq!(r.outcome(true), None, "nothing landed: no audit line");
        r.kept.push(("modify", vec!["title".into(), "cn".into()]));
        r.kept.push(("password", vec!["password".into()]));
        assert_eq!(r.outcome(false), Some("written"));
        assert_eq!(r.attributes(), ["title", "cn", "password"]);
        let undone = Record { undone: vec!["modify", "rename"], ..Record::default() };
        assert_eq!(undone.outcome(true), Some("undone"));
        let partial = Record { undo_failed: vec!["rename"], ..Record::default() };
        assert_eq!(partial.outcome(true), Some("partial"));
    }

    /// A directory that only records the operations it is asked for, and fails those whose
    /// number (1-based) is in `fail` with the error `error` makes: sequencing and compensation
    /// tested without I/O.
    struct Scripted {
        calls: std::sync::Mutex<Vec<String>>,
        fail: Vec<usize>,
        error: fn() -> DirectoryError,
    }

    impl Scripted {
        fn new(fail: usize, error: fn() -> DirectoryError) -> Scripted {
            Scripted { calls: Default::default(), fail: vec![fail], error }
        }
        fn call(&self, what: String) -> crate::directory::Result<()> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(what);
            if self.fail.contains(&calls.len()) {
                return Err((self.error)());
            }
            Ok(())
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Directory for Scripted {
        async fn search(&self, _: &crate::directory::Search) -> crate::directory::Result<Vec<crate::directory::Entry>> {
            Ok(Vec::new())
        }
        async fn add(&self, dn: &str, _: &Attributes, _: &Binary, _: Option<&str>) -> crate::directory::Result<()> {
            self.call(format!("add {dn}"))
        }
        async fn modify(&self, dn: &str, changes: &[Change]) -> crate::directory::Result<()> {
            self.call(format!("modify {dn} {changes:?}"))
        }
        async fn compare(&self, dn: &str, _: &str, _: &str) -> crate::directory::Result<bool> {
            self.call(format!("compare {dn}")).map(|()| true)
        }
        async fn rename(&self, dn: &str, rdn: &str) -> crate::directory::Result<()> {
            self.call(format!("rename {dn} {rdn}"))
        }
        async fn delete(&self, dn: &str) -> crate::directory::Result<()> {
            self.call(format!("delete {dn}"))
        }
        async fn set_password(&self, dn: &str, _: &str) -> crate::directory::Result<()> {
            self.call(format!("password {dn}"))
        }
        async fn subschema(&self) -> crate::directory::Result<crate::directory::schema::Subschema> {
            unimplemented!("not used by a write")
        }
        async fn ping(&self) -> crate::directory::Result<()> {
            Ok(())
        }
    }

    /// PUT with a rename, a title and a password: rename, modify, password.
    fn put() -> Sequence {
        let title = |v: &str| vec![Change::Replace("title".into(), vec![v.into()])];
        Sequence::new()
            .then(Step::Rename { dn: "uid=a,ou=p".into(), rdn: "uid=b".into(), back: "uid=a".into() })
            .then(Step::Modify { dn: "uid=b,ou=p".into(), changes: title("New"), undo: title("Old"), stand_in: None })
            .then(Step::Password { dn: "uid=b,ou=p".into(), password: "pw".into() })
    }

    #[tokio::test]
    async fn a_failure_undoes_what_landed_in_reverse() {
        let refused = || DirectoryError::Rejected { code: 19, text: "no".into() };
        // The password refused: the modify and the rename are put back, nothing is kept.
        let dir = Scripted::new(3, refused);
        let (record, result) = put().run(&dir, "uid=a,ou=p").await;
        assert!(result.is_err());
        let calls = dir.calls();
        assert_eq!(calls[3], r#"modify uid=b,ou=p [Replace("title", ["Old"])]"#);
        assert_eq!(calls[4], "rename uid=b,ou=p uid=a");
        assert_eq!(calls.len(), 5);
        assert_eq!((record.outcome(true), record.dn.as_str()), (Some("undone"), "uid=a,ou=p"));
        // The modify refused: only the rename is undone; the password is never sent.
        let dir = Scripted::new(2, refused);
        let (record, _) = put().run(&dir, "uid=a,ou=p").await;
        assert_eq!(dir.calls()[2], "rename uid=b,ou=p uid=a");
        assert!(!dir.calls().iter().any(|c| c.starts_with("password")));
        assert_eq!(record.undone, ["rename"]);
        // The rename refused: nothing landed, nothing to undo, no audit line.
        let dir = Scripted::new(1, refused);
        let (record, _) = put().run(&dir, "uid=a,ou=p").await;
        assert_eq!((dir.calls().len(), record.outcome(true)), (1, None));
    }

    #[tokio::test]
    async fn unanswered_steps_are_undone_and_passwords_sent_again() {
        let lost = || DirectoryError::Unavailable("timeout".into());
        // The modify's answer lost: it may have landed, so it is undone too, then the rename.
        let dir = Scripted::new(2, lost);
        let (record, result) = put().run(&dir, "uid=a,ou=p").await;
        assert!(result.is_err());
        assert_eq!(record.undone, ["modify", "rename"]);
        // The password's answer lost: sent once more, and the write completes.
        let dir = Scripted::new(3, lost);
        let (record, result) = put().run(&dir, "uid=a,ou=p").await;
        assert!(result.is_ok());
        assert_eq!(dir.calls()[3], "password uid=b,ou=p");
        assert_eq!((record.outcome(false), record.dn.as_str()), (Some("written"), "uid=b,ou=p"));
        // A delete's answer lost: the entry is looked for (here it is still there: a failure).
        let dir = Scripted::new(1, lost);
        let (_, result) = Sequence::new().then(Step::Delete { dn: "uid=a,ou=p".into() }).run(&dir, "uid=a,ou=p").await;
        assert!(result.is_err() && dir.calls()[1] == "compare uid=a,ou=p");
    }

    #[tokio::test]
    async fn an_undo_that_fails_leaves_a_partial_record() {
        // The modify refused (call 2), then the rename back refused too (call 3); the entry is
        // found under its new name (call 4): the rename stays, and the record says so.
        let refused = || DirectoryError::Rejected { code: 19, text: "no".into() };
        let dir = Scripted { calls: Default::default(), fail: vec![2, 3], error: refused };
        let (record, result) = put().run(&dir, "uid=a,ou=p").await;
        assert!(result.is_err());
        assert_eq!(dir.calls()[3], "compare uid=b,ou=p");
        assert_eq!((record.undo_failed.as_slice(), record.outcome(true)), (&["rename"][..], Some("partial")));
        assert_eq!(record.attributes(), ["uid"], "what the directory now holds of the request");
    }
}
