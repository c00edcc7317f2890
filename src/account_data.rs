//! Taking your data with you: a vault exported as one `.tar.gz` archive of its files, an
//! archive (`.tar.gz` or `.zip`, such as an Obsidian vault folder zipped) or a folder imported
//! into a vault, and the files of an account removed.
//!
//! Export writes a tar stream through gzip as it walks the vault, so a large vault is never
//! held in memory and the download starts at once (tar needs no index at the end, unlike zip).
//! Dot entries (the server's temporary files, editor settings such as `.obsidian/`) are left
//! out; the index is not in the vault and is never exported: it is rebuilt from the files.
//!
//! Import writes files directly, byte for byte, while the caller holds the vault (no actor
//! runs on it); the next actor reconciles its index with the files. Every entry is checked:
//! no absolute path, `..`, backslash or control character, no symlink or other special entry,
//! no dot entry (`.obsidian/`, `.trash/`, dot files), no file that already exists, size limits
//! and the vault's quotas. Each refusal is reported with its reason and the rest goes on.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vault_actors::settings::Quotas;
use vault_actors::{Settings, UserId};

/// Most entries an archive may have (a bound on the work one upload can cause).
const MAX_ENTRIES: usize = 200_000;
/// Largest attachment (a non-markdown file) imported.
pub const MAX_ATTACHMENT_BYTES: u64 = 32 << 20;
/// Longest path imported, in bytes.
const MAX_PATH_BYTES: usize = 1024;

/// Where users' files live, and the limits an import keeps to.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `<vault_base>/<user>/…`: the notes and attachments.
    pub vault_base: PathBuf,
    /// `<index_base>/<user>.sqlite` (with its WAL files): index, sessions, history.
    pub index_base: PathBuf,
    /// Largest note file.
    pub max_note_bytes: u64,
    pub quotas: Quotas,
}

impl Storage {
    pub fn from_settings(settings: &Settings) -> Self {
        Storage {
            vault_base: settings.vault_base.clone(),
            index_base: settings.index_base.clone(),
            max_note_bytes: settings.max_note_bytes as u64,
            quotas: settings.quotas,
        }
    }

    pub fn vault_dir(&self, user: &UserId) -> PathBuf {
        self.vault_base.join(user.as_str())
    }

    /// The user's index, history and move-journal files, with SQLite's files beside them.
    fn index_files(&self, user: &UserId) -> Vec<PathBuf> {
        let index = self.index_base.join(format!("{}.sqlite", user.as_str()));
        let private = vault_actors::vault::PrivateFiles::beside(&index);
        let mut files: Vec<PathBuf> = [&index, &private.history]
            .into_iter()
            .flat_map(|db| {
                ["", "-wal", "-shm", "-journal"].iter().map(move |suffix| {
                    let mut name = db.clone().into_os_string();
                    name.push(suffix);
                    PathBuf::from(name)
                })
            })
            .collect();
        files.push(private.journal);
        files
    }

    /// Largest archive accepted for upload: the vault quota, since nothing bigger could fit.
    pub fn max_upload_bytes(&self) -> u64 {
        self.quotas.vault_bytes.max(self.max_note_bytes)
    }

    /// Remove `user`'s vault folder and index files. The caller holds the vault.
    pub fn remove_user_files(&self, user: &UserId) -> io::Result<()> {
        match std::fs::remove_dir_all(self.vault_dir(user)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for file in self.index_files(user) {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Exported {
    pub files: u64,
    pub bytes: u64,
}

/// Is this name one the vault keeps out of sight (temp files, editor settings, trash)?
fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Every regular file below `vault` that is not hidden, as (path relative with `/`, full
/// path), sorted. Symlinks are never followed.
fn vault_files(vault: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
        let mut entries: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.collect::<Result<_, _>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if is_hidden(&name) {
                continue;
            }
            let kind = entry.file_type()?;
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out)?;
            } else if kind.is_file() {
                out.push((rel, entry.path()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(vault, "", &mut out)?;
    Ok(out)
}

/// Write `vault` as a gzip-compressed tar archive to `out`, file by file.
pub fn export(vault: &Path, out: impl Write) -> io::Result<Exported> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut done = Exported::default();
    for (name, path) in vault_files(vault)? {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            // Deleted since the walk: it is simply not part of this export.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_mtime(
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        header.set_size(meta.len());
        tar.append_data(&mut header, &name, &mut file)?;
        done.files += 1;
        done.bytes += meta.len();
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(done)
}

/// Where an import's entries come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An uploaded archive, `.tar.gz` or `.zip` (told apart by their first bytes).
    Archive(PathBuf),
    /// A folder on this machine (the command line, in local mode).
    Folder(PathBuf),
}

/// Why an import could not run at all (a refused entry is reported instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the upload is neither a .zip nor a .tar.gz archive")]
    UnknownFormat,
    #[error("the archive is damaged or unreadable: {0}")]
    Damaged(String),
    #[error("the archive has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("writing the vault failed: {0}")]
    Io(#[from] io::Error),
}

impl ImportError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::UnknownFormat => "unknown_format",
            ImportError::Damaged(_) => "damaged_archive",
            ImportError::TooManyEntries => "too_many_entries",
            ImportError::Io(_) => "storage",
        }
    }
}

/// One imported file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Imported {
    pub path: String,
    /// `note` (markdown) or `attachment`.
    pub kind: &'static str,
    pub bytes: u64,
}

/// One entry left out, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's name as the archive gives it.
    pub path: String,
    /// A stable machine code: `obsidian_settings`, `trash`, `hidden`, `unsafe_path`,
    /// `symlink`, `not_a_file`, `exists`, `too_large`, `not_utf8`, `quota_exceeded`.
    pub reason: &'static str,
    pub detail: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub imported: Vec<Imported>,
    pub skipped: Vec<Skipped>,
    /// A top folder stripped from every name (an Obsidian vault folder zipped whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripped_folder: Option<String>,
}

impl ImportReport {
    pub fn notes(&self) -> usize {
        self.imported.iter().filter(|i| i.kind == "note").count()
    }

    pub fn attachments(&self) -> usize {
        self.imported.len() - self.notes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// Call `f` with every entry of `source`: its name (`/`-separated), kind and content.
fn each_entry(
    source: &Source,
    f: &mut dyn FnMut(String, Kind, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ImportError> {
    match source {
        Source::Folder(root) => each_in_folder(root, root, f),
        Source::Archive(path) => {
            let mut magic = [0u8; 4];
            let n = File::open(path)?.read(&mut magic)?;
            match &magic[..n] {
                [0x1f, 0x8b, ..] => each_in_tar_gz(path, f),
                [b'P', b'K', 3, 4] | [b'P', b'K', 5, 6] => each_in_zip(path, f),
                _ => Err(ImportError::UnknownFormat),
            }
        }
    }
}

fn each_in_folder(
    root: &Path,
    dir: &Path,
    f: &mut dyn FnMut(String, Kind, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ImportError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .map_err(|e| ImportError::Damaged(e.to_string()))?
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            f(name, Kind::Link, &mut io::empty())?;
        } else if kind.is_dir() {
            f(name, Kind::Dir, &mut io::empty())?;
            each_in_folder(root, &path, f)?;
        } else if kind.is_file() {
            f(name, Kind::File, &mut File::open(&path)?)?;
        } else {
            f(name, Kind::Other, &mut io::empty())?;
        }
    }
    Ok(())
}

fn each_in_tar_gz(
    path: &Path,
    f: &mut dyn FnMut(String, Kind, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ImportError> {
    let gz = flate2::read::GzDecoder::new(BufReader::new(File::open(path)?));
    let mut archive = tar::Archive::new(gz);
    let damaged = |e: io::Error| ImportError::Damaged(e.to_string());
    for (n, entry) in archive.entries().map_err(damaged)?.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(ImportError::TooManyEntries);
        }
        let mut entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink | tar::EntryType::Link => Kind::Link,
            // Metadata entries of pax and GNU tar are read by the tar crate itself.
            _ => Kind::Other,
        };
        f(name, kind, &mut entry).map_err(damaged)?;
    }
    Ok(())
}

fn each_in_zip(
    path: &Path,
    f: &mut dyn FnMut(String, Kind, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ImportError> {
    let damaged = |e: zip::result::ZipError| ImportError::Damaged(e.to_string());
    let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path)?)).map_err(damaged)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(damaged)?;
        let name = file.name().to_string();
        let kind = if file.is_symlink() {
            Kind::Link
        } else if file.is_dir() {
            Kind::Dir
        } else if file.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        f(name, kind, &mut file).map_err(|e| ImportError::Damaged(e.to_string()))?;
    }
    Ok(())
}

/// The top folder of an Obsidian vault zipped whole (`MyVault/.obsidian/…`), to be stripped:
/// only when every entry lies below it and it holds `.obsidian/`, so a vault exported here
/// (whose files sit at the top) is never changed.
fn obsidian_folder(names: &[String]) -> Option<String> {
    let first = names.first()?.split('/').next()?.to_string();
    if first.is_empty() || is_hidden(&first) {
        return None;
    }
    let prefix = format!("{first}/");
    let all_below = names
        .iter()
        .all(|n| n.starts_with(&prefix) || n.trim_end_matches('/') == first);
    let has_settings = names
        .iter()
        .any(|n| n.starts_with(&format!("{prefix}.obsidian/")));
    (all_below && has_settings).then_some(first)
}

/// Why a name cannot be a path in the vault, if it cannot.
fn unsafe_path(name: &str) -> Option<&'static str> {
    if name.starts_with('/') {
        return Some("an absolute path");
    }
    if name.contains('\\') {
        return Some("a backslash in the path");
    }
    if name.chars().any(char::is_control) {
        return Some("a control character in the path");
    }
    if name.len() > MAX_PATH_BYTES {
        return Some("a path too long");
    }
    if name.split('/').any(|c| c == "..") {
        return Some("a `..` segment (it would leave the vault)");
    }
    if name.split('/').any(|c| c.is_empty() || c == ".") {
        return Some("an empty or `.` segment");
    }
    None
}

/// The reason to skip a name with a dot segment.
fn hidden_reason(name: &str) -> Option<(&'static str, &'static str)> {
    let segment = name.split('/').find(|c| is_hidden(c))?;
    Some(match segment {
        ".obsidian" => (
            "obsidian_settings",
            "Obsidian's settings folder is not imported",
        ),
        ".trash" => ("trash", "Obsidian's trash is not imported"),
        _ => ("hidden", "hidden files and folders are not imported"),
    })
}

/// Notes and bytes already in the vault, against the quotas.
fn usage(vault: &Path) -> io::Result<(u64, u64)> {
    let mut notes = 0;
    let mut bytes = 0;
    for (name, path) in vault_files(vault)? {
        if name.ends_with(".md") {
            notes += 1;
        }
        bytes += std::fs::symlink_metadata(&path)?.len();
    }
    Ok((notes, bytes))
}

/// Create the folders of `rel` below `vault`, refusing to go through a symlink.
fn make_parent(vault: &Path, rel: &str) -> io::Result<PathBuf> {
    let mut dir = vault.to_path_buf();
    let segments: Vec<&str> = rel.split('/').collect();
    for segment in &segments[..segments.len() - 1] {
        dir.push(segment);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a folder of the path is a symlink or a file",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&dir)?,
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Write `bytes` to `target` (which must not exist) through a temp file, durably.
fn write_new(dir: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.import.tmp"));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        std::fs::rename(&tmp, target)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Import `source` into `vault`. The caller holds the vault: no actor runs on it.
pub fn import(
    source: &Source,
    vault: &Path,
    storage: &Storage,
) -> Result<ImportReport, ImportError> {
    let mut names = Vec::new();
    each_entry(source, &mut |name, _, _| {
        names.push(name);
        Ok(())
    })?;
    std::fs::create_dir_all(vault)?;
    let mut report = ImportReport {
        stripped_folder: obsidian_folder(&names),
        ..ImportReport::default()
    };
    let (mut notes, mut bytes) = usage(vault)?;
    let strip = report.stripped_folder.as_ref().map(|f| format!("{f}/"));
    each_entry(source, &mut |name, kind, reader| {
        let rel = match &strip {
            Some(prefix) => name.strip_prefix(prefix.as_str()).unwrap_or(&name),
            None => name.as_str(),
        };
        let rel = rel.trim_end_matches('/');
        let mut skip = |reason: &'static str, detail: &str| {
            report.skipped.push(Skipped {
                path: name.clone(),
                reason,
                detail: detail.to_string(),
            });
        };
        if rel.is_empty() || (kind == Kind::Dir && unsafe_path(rel).is_none()) {
            if let Some((reason, detail)) = hidden_reason(rel).filter(|_| kind == Kind::Dir) {
                // Reported once, for the folder; its files are reported as they come.
                skip(reason, detail);
            }
            return Ok(());
        }
        if let Some(why) = unsafe_path(rel) {
            skip("unsafe_path", &format!("refused: {why}"));
            return Ok(());
        }
        if let Some((reason, detail)) = hidden_reason(rel) {
            skip(reason, detail);
            return Ok(());
        }
        match kind {
            Kind::Link => {
                skip(
                    "symlink",
                    "links are not imported: they could point outside the vault",
                );
                return Ok(());
            }
            Kind::Other | Kind::Dir => {
                skip("not_a_file", "only regular files are imported");
                return Ok(());
            }
            Kind::File => {}
        }
        let is_note = rel.ends_with(".md");
        if is_note {
            if let Err(e) = vault_actors::note::NotePath::parse(rel) {
                skip("unsafe_path", &e.to_string());
                return Ok(());
            }
        }
        let target = vault.join(rel);
        if std::fs::symlink_metadata(&target).is_ok() {
            skip(
                "exists",
                "a file with this path is already in the vault; it is kept",
            );
            return Ok(());
        }
        let limit = if is_note {
            storage.max_note_bytes
        } else {
            MAX_ATTACHMENT_BYTES
        };
        let mut content = Vec::new();
        reader.take(limit + 1).read_to_end(&mut content)?;
        if content.len() as u64 > limit {
            skip("too_large", &format!("over the limit of {limit} bytes"));
            return Ok(());
        }
        if is_note && std::str::from_utf8(&content).is_err() {
            skip("not_utf8", "a note must be UTF-8 text");
            return Ok(());
        }
        let size = content.len() as u64;
        if is_note && notes >= storage.quotas.notes_per_vault {
            let detail = format!("{} notes at most", storage.quotas.notes_per_vault);
            skip("quota_exceeded", &detail);
            return Ok(());
        }
        if bytes + size > storage.quotas.vault_bytes {
            let detail = format!("{} bytes at most", storage.quotas.vault_bytes);
            skip("quota_exceeded", &detail);
            return Ok(());
        }
        let dir = match make_parent(vault, rel) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                skip("unsafe_path", &e.to_string());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match write_new(&dir, &target, &content) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                skip(
                    "exists",
                    "a file with this path is already in the vault; it is kept",
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if is_note {
            notes += 1;
        }
        bytes += size;
        report.imported.push(Imported {
            path: rel.to_string(),
            kind: if is_note { "note" } else { "attachment" },
            bytes: size,
        });
        Ok(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused_with_a_reason() {
        for bad in [
            "/etc/passwd",
            "../up.md",
            "a/../../b.md",
            "a\\b.md",
            "a//b.md",
            "./a.md",
            "nul\0.md",
        ] {
            assert!(unsafe_path(bad).is_some(), "{bad:?}");
        }
        assert!(unsafe_path("folder/note.md").is_none());
        assert!(unsafe_path("img/photo 1.png").is_none());
    }

    #[test]
    fn only_a_zipped_obsidian_vault_loses_its_top_folder() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            obsidian_folder(&names(&["V/", "V/.obsidian/app.json", "V/a.md"])),
            Some("V".into())
        );
        assert_eq!(obsidian_folder(&names(&["work/a.md", "work/b.md"])), None);
        assert_eq!(
            obsidian_folder(&names(&["V/.obsidian/app.json", "other.md"])),
            None
        );
    }

    #[test]
    fn a_vault_exported_and_imported_is_the_same_files() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("sub/deeper")).unwrap();
        std::fs::write(from.path().join("a.md"), "---\ntitle: A\n---\nbody\n").unwrap();
        std::fs::write(from.path().join("sub/deeper/b.md"), "b").unwrap();
        std::fs::write(from.path().join("sub/pic.png"), [0u8, 159, 146, 150]).unwrap();
        std::fs::write(from.path().join(".a.md.x.tmp"), "temp").unwrap();
        let archive = tempfile::NamedTempFile::new().unwrap();
        let done = export(from.path(), File::create(archive.path()).unwrap()).unwrap();
        assert_eq!(done.files, 3);
        let to = tempfile::tempdir().unwrap();
        let storage = Storage {
            vault_base: to.path().into(),
            index_base: to.path().into(),
            max_note_bytes: 1 << 20,
            quotas: Quotas::default(),
        };
        let vault = to.path().join("v");
        let report = import(&Source::Archive(archive.path().into()), &vault, &storage).unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!((report.notes(), report.attachments()), (2, 1));
        for rel in ["a.md", "sub/deeper/b.md", "sub/pic.png"] {
            assert_eq!(
                std::fs::read(from.path().join(rel)).unwrap(),
                std::fs::read(vault.join(rel)).unwrap()
            );
        }
        assert!(!vault.join(".a.md.x.tmp").exists());
    }
}
