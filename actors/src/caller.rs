//! Who is calling, as the front established it from a verified token, and what the token lets
//! them touch.
//!
//! A token's `scope` claim is a space-separated list of grants:
//! - `notes:read` / `notes:write`: the whole vault;
//! - `notes:read:<folder>` / `notes:write:<folder>`: that folder and everything below it.
//!
//! Write implies read of the same folders. No `scope` claim at all means every right over the
//! user's own vault; a claim that grants nothing (only unknown or malformed entries) means no
//! right. Folder names are checked with the vault's own folder rules ([`parse_folder`]); inside
//! the claim, `%` and whitespace in a folder name are percent-encoded so that a folder such as
//! `My Notes` survives the space-separated list.
//!
//! Every request carries its own [`Caller`]: an MCP session remembers nothing of the token that
//! opened it, so the scope enforced is always the one of the token on the current request.

use std::fmt;

use crate::error::VaultError;
use crate::note::{parse_folder, NotePath};
use crate::user_id::UserId;

/// The authenticated caller of one request: whose vault, and what the token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    /// Where the token may read and write.
    pub access: Access,
}

impl Caller {
    /// A caller with every right over `user`'s vault.
    pub fn full(user: UserId) -> Self {
        Caller {
            user,
            access: Access::full(),
        }
    }

    /// The token may read some notes (maybe only in some folders).
    pub fn can_read(&self) -> bool {
        !self.access.read.is_empty()
    }

    /// The token may change some notes (maybe only in some folders).
    pub fn can_write(&self) -> bool {
        !self.access.write.is_empty()
    }
}

/// The folders a right covers: the whole vault, or a list of folder trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderSet {
    /// Every note of the vault.
    All,
    /// Only the notes in these folders or below; sorted, and none lies inside another, so
    /// their note ranges are disjoint. Empty: no note at all.
    Only(Vec<String>),
}

impl FolderSet {
    /// No note at all.
    pub fn none() -> Self {
        FolderSet::Only(Vec::new())
    }

    /// The set of `folders` (already checked), with folders inside another one dropped.
    pub fn of(folders: impl IntoIterator<Item = String>) -> Self {
        let mut all: Vec<String> = folders.into_iter().collect();
        if all.iter().any(String::is_empty) {
            return FolderSet::All;
        }
        // Sorting by "folder/" puts every folder right before the folders inside it.
        all.sort_by(|a, b| format!("{a}/").cmp(&format!("{b}/")));
        all.dedup();
        let mut kept: Vec<String> = Vec::with_capacity(all.len());
        for folder in all {
            if !kept.last().is_some_and(|k| is_within(&folder, k)) {
                kept.push(folder);
            }
        }
        FolderSet::Only(kept)
    }

    /// True when the set covers no note.
    pub fn is_empty(&self) -> bool {
        matches!(self, FolderSet::Only(f) if f.is_empty())
    }

    /// Does the set cover the note at `path`?
    pub fn contains(&self, path: &NotePath) -> bool {
        self.covers_folder(path.folder())
    }

    /// Does the set cover the whole of `folder` (`""` = the vault root)?
    pub fn covers_folder(&self, folder: &str) -> bool {
        match self {
            FolderSet::All => true,
            FolderSet::Only(folders) => folders.iter().any(|f| is_within(folder, f)),
        }
    }

    /// The part of the set inside `folder` (`""` = the whole vault): all of `folder` when the
    /// set covers it, else the set's folders that lie inside it.
    pub fn within(&self, folder: &str) -> FolderSet {
        if self.covers_folder(folder) {
            return if folder.is_empty() {
                FolderSet::All
            } else {
                FolderSet::Only(vec![folder.to_string()])
            };
        }
        match self {
            FolderSet::All => FolderSet::All,
            FolderSet::Only(folders) => FolderSet::Only(
                folders
                    .iter()
                    .filter(|f| is_within(f, folder))
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// The union of two sets.
    pub fn union(&self, other: &FolderSet) -> FolderSet {
        match (self, other) {
            (FolderSet::Only(a), FolderSet::Only(b)) => FolderSet::of(a.iter().chain(b).cloned()),
            _ => FolderSet::All,
        }
    }
}

/// Is `folder` the folder `tree` or inside it? `""` is the vault root, which holds everything.
fn is_within(folder: &str, tree: &str) -> bool {
    tree.is_empty()
        || folder == tree
        || folder
            .strip_prefix(tree)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// What a token may do, by folder. Write implies read: `write` is always inside `read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub read: FolderSet,
    pub write: FolderSet,
}

/// The two rights a grant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Write,
}

impl Right {
    fn scope(self) -> &'static str {
        match self {
            Right::Read => "notes:read",
            Right::Write => "notes:write",
        }
    }
}

/// One entry of a `scope` claim: a right over the whole vault (`folder` empty) or one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub right: Right,
    /// A folder checked by [`parse_folder`]; `""` = the whole vault.
    pub folder: String,
}

/// Why a grant typed by a person was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error("unknown scope {0:?}: use notes:read, notes:write, notes:read:<folder> or notes:write:<folder>")]
    Unknown(String),
    #[error("scope {scope:?}: {reason}")]
    BadFolder { scope: String, reason: String },
}

impl Grant {
    /// A grant as a person types it (CLI, account page): `notes:read`, `notes:write`, or one of
    /// them followed by `:` and a folder name written plainly (`notes:write:My Notes`).
    pub fn parse(typed: &str) -> Result<Grant, ScopeError> {
        let typed = typed.trim();
        let (right, rest) = if let Some(rest) = typed.strip_prefix("notes:read") {
            (Right::Read, rest)
        } else if let Some(rest) = typed.strip_prefix("notes:write") {
            (Right::Write, rest)
        } else {
            return Err(ScopeError::Unknown(typed.to_string()));
        };
        let folder = match rest.strip_prefix(':') {
            None if rest.is_empty() => String::new(),
            None => return Err(ScopeError::Unknown(typed.to_string())),
            Some(raw) => Self::folder(typed, raw)?,
        };
        Ok(Grant { right, folder })
    }

    /// A grant of a folder named plainly.
    pub fn folder_grant(right: Right, raw: &str) -> Result<Grant, ScopeError> {
        let typed = format!("{}:{raw}", right.scope());
        Ok(Grant {
            right,
            folder: Self::folder(&typed, raw)?,
        })
    }

    fn folder(typed: &str, raw: &str) -> Result<String, ScopeError> {
        let bad = |reason: String| ScopeError::BadFolder {
            scope: typed.to_string(),
            reason,
        };
        match parse_folder(raw) {
            Ok(f) if f.is_empty() => Err(bad(format!(
                "name a folder, or use {} for the whole vault",
                typed.trim_end_matches(['/', ':'])
            ))),
            Ok(f) => Ok(f),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// One entry of a `scope` claim, folder percent-encoded; `None` for entries this server
    /// does not know (other scopes are ignored, they grant nothing here).
    fn from_claim(entry: &str) -> Option<Grant> {
        let (right, rest) = if let Some(rest) = entry.strip_prefix("notes:read") {
            (Right::Read, rest)
        } else {
            (Right::Write, entry.strip_prefix("notes:write")?)
        };
        if rest.is_empty() {
            return Some(Grant {
                right,
                folder: String::new(),
            });
        }
        let folder = parse_folder(&percent_decode(rest.strip_prefix(':')?)?).ok()?;
        (!folder.is_empty()).then_some(Grant { right, folder })
    }
}

impl fmt::Display for Grant {
    /// The grant as it goes into a `scope` claim.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.right.scope())?;
        if !self.folder.is_empty() {
            write!(f, ":{}", percent_encode(&self.folder))?;
        }
        Ok(())
    }
}

/// `%` and whitespace as `%XX` of their UTF-8 bytes; everything else as is.
fn percent_encode(folder: &str) -> String {
    let mut out = String::with_capacity(folder.len());
    for c in folder.chars() {
        if c == '%' || c.is_whitespace() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(encoded: &str) -> Option<String> {
    let raw = encoded.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).ok()
}

impl Access {
    /// Every right over the whole vault.
    pub fn full() -> Self {
        Access {
            read: FolderSet::All,
            write: FolderSet::All,
        }
    }

    /// No right at all.
    pub fn none() -> Self {
        Access {
            read: FolderSet::none(),
            write: FolderSet::none(),
        }
    }

    /// The access `grants` give together (write implies read).
    pub fn of(grants: &[Grant]) -> Self {
        let folders = |right: Right| {
            grants
                .iter()
                .filter(move |g| g.right == right || right == Right::Read)
                .map(|g| g.folder.clone())
        };
        let mut read = FolderSet::of(folders(Right::Read));
        let mut write = FolderSet::of(folders(Right::Write));
        if grants.is_empty() {
            (read, write) = (FolderSet::none(), FolderSet::none());
        }
        Access { read, write }
    }

    /// The access a token's `scope` claim gives: `None` (no claim) is full access; unknown
    /// entries grant nothing.
    pub fn from_claim(scope: Option<&str>) -> Self {
        match scope {
            None => Access::full(),
            Some(scope) => {
                let grants: Vec<Grant> = scope
                    .split_whitespace()
                    .filter_map(Grant::from_claim)
                    .collect();
                Access::of(&grants)
            }
        }
    }

    /// The `scope` claim entries that give exactly this access (empty for full access, which
    /// tokens express by having no claim).
    pub fn to_claim(&self) -> Vec<String> {
        if *self == Access::full() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut push = |right: Right, set: &FolderSet, skip: &FolderSet| match set {
            FolderSet::All => out.push(right.scope().to_string()),
            FolderSet::Only(folders) => {
                out.extend(folders.iter().filter(|f| !skip.covers_folder(f)).map(|f| {
                    Grant {
                        right,
                        folder: f.clone(),
                    }
                    .to_string()
                }))
            }
        };
        push(Right::Write, &self.write, &FolderSet::none());
        push(Right::Read, &self.read, &self.write);
        out
    }

    /// May the token read the note at `path`?
    pub fn allows_read(&self, path: &NotePath) -> bool {
        self.read.contains(path)
    }

    /// May the token create, change or delete the note at `path`?
    pub fn allows_write(&self, path: &NotePath) -> bool {
        self.write.contains(path)
    }

    /// `insufficient_scope` unless the token may read the note at `raw_path`. A path that is
    /// not a note path answers `invalid_path`, as the vault would.
    pub fn check_read(&self, raw_path: &str) -> Result<(), VaultError> {
        if self.allows_read(&NotePath::parse(raw_path)?) {
            Ok(())
        } else {
            Err(VaultError::InsufficientScope(
                "read this note: it is outside the folders the token may read",
            ))
        }
    }

    /// `insufficient_scope` unless the token may change the note at `raw_path`.
    pub fn check_write(&self, raw_path: &str) -> Result<(), VaultError> {
        if self.allows_write(&NotePath::parse(raw_path)?) {
            Ok(())
        } else {
            Err(VaultError::InsufficientScope(
                "change this note: it is outside the folders the token may write",
            ))
        }
    }

    /// The folders readable inside the requested `folder` (`None` = the whole vault), for
    /// listings and searches; `insufficient_scope` when none is.
    pub fn readable_within(&self, folder: Option<&str>) -> Result<FolderSet, VaultError> {
        let folder = parse_folder(folder.unwrap_or(""))?;
        let set = self.read.within(&folder);
        if set.is_empty() {
            return Err(VaultError::InsufficientScope(
                "read this folder: it is outside the folders the token may read",
            ));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> NotePath {
        NotePath::parse(p).unwrap()
    }

    fn grants(typed: &[&str]) -> Access {
        Access::of(
            &typed
                .iter()
                .map(|t| Grant::parse(t).unwrap())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_folder_grant_covers_the_folder_and_below_only() {
        let a = grants(&["notes:write:work", "notes:read:shared/team"]);
        assert!(a.allows_write(&path("work/a.md")) && a.allows_write(&path("work/x/y/b.md")));
        assert!(a.allows_read(&path("work/a.md")), "write implies read");
        assert!(a.allows_read(&path("shared/team/n.md")));
        assert!(!a.allows_write(&path("shared/team/n.md")));
        for outside in [
            "a.md",
            "workshop/a.md",
            "shared/other.md",
            "shared/teams/x.md",
        ] {
            assert!(!a.allows_read(&path(outside)), "{outside}");
        }
    }

    #[test]
    fn whole_vault_grants_and_missing_claims() {
        assert_eq!(Access::from_claim(None), Access::full());
        let read = Access::from_claim(Some("notes:read"));
        assert!(read.allows_read(&path("a/b.md")) && !read.allows_write(&path("a/b.md")));
        let write = Access::from_claim(Some("notes:write"));
        assert_eq!(write, Access::full());
        let nothing = Access::from_claim(Some("openid profile notes:read:../x"));
        assert_eq!(nothing, Access::none());
        assert!(!Caller {
            user: UserId::parse("u").unwrap(),
            access: nothing
        }
        .can_read());
    }

    #[test]
    fn claims_round_trip_folders_with_spaces_and_percent() {
        let a = grants(&[
            "notes:write:My Notes",
            "notes:read:100% done",
            "notes:read:My Notes/x",
        ]);
        let claim = a.to_claim();
        assert_eq!(
            claim,
            vec!["notes:write:My%20Notes", "notes:read:100%25%20done"]
        );
        assert_eq!(Access::from_claim(Some(&claim.join(" "))), a);
        assert!(Access::full().to_claim().is_empty());
        let read_all = Access::from_claim(Some("notes:read"));
        assert_eq!(
            Access::from_claim(Some(&read_all.to_claim().join(" "))),
            read_all
        );
    }

    #[test]
    fn typed_grants_are_checked_with_the_folder_rules() {
        assert_eq!(Grant::parse("notes:read:work/").unwrap().folder, "work");
        for bad in [
            "notes:read:",
            "notes:read:../x",
            "notes:write:/abs",
            "notes:writer",
            "admin",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn folder_sets_drop_nested_folders_and_narrow_to_a_request() {
        let set = FolderSet::of([
            "b/c".into(),
            "a".into(),
            "b".into(),
            "a-b".into(),
            "a/x".into(),
        ]);
        assert_eq!(
            set,
            FolderSet::Only(vec!["a-b".into(), "a".into(), "b".into()])
        );
        assert_eq!(set.within(""), set);
        assert_eq!(set.within("a/x"), FolderSet::Only(vec!["a/x".into()]));
        assert!(set.within("c").is_empty());
        let deep = FolderSet::of(["p/q/r".into()]);
        assert_eq!(deep.within("p"), deep);
        assert_eq!(
            FolderSet::All.within("p"),
            FolderSet::Only(vec!["p".into()])
        );
    }

    #[test]
    fn readable_within_refuses_a_folder_outside_the_scope() {
        let a = grants(&["notes:read:work"]);
        assert_eq!(
            a.readable_within(None).unwrap(),
            FolderSet::Only(vec!["work".into()])
        );
        let e = a.readable_within(Some("home")).unwrap_err();
        assert_eq!(e.code(), "insufficient_scope");
        assert_eq!(
            a.check_write("work/a.md").unwrap_err().code(),
            "insufficient_scope"
        );
        assert_eq!(
            a.check_read("x/../a.md").unwrap_err().code(),
            "invalid_path"
        );
    }
}
