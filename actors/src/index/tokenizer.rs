//! FTS5's own `unicode61` tokenizer, called from Rust.
//!
//! The in-memory ranker and the snippet builder must see exactly the tokens FTS5 stored:
//! same case folding, same diacritic removal, same separators. Re-implementing unicode61 would
//! drift with every SQLite upgrade, so this module asks the connection's FTS5 module for the
//! real tokenizer (through the `fts5_api` pointer) and instantiates it with the arguments of
//! the `notes_fts` table.
//!
//! All `unsafe` of the index lives here. The tokenizer instance is self-contained: unicode61 is
//! a version-1 tokenizer whose functions are static and whose state is `sqlite3_malloc`ed, so
//! it does not borrow from the connection it was found through and may outlive it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ops::{ControlFlow, Range};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;

use rusqlite::{ffi, Connection};

/// The tokenizer and the arguments `notes_fts` is declared with (see `schema.rs`).
const TOKENIZER: &CStr = c"unicode61";
const ARGS: [&CStr; 2] = [c"remove_diacritics", c"2"];

/// An instance of FTS5's `unicode61 remove_diacritics 2` tokenizer.
pub struct Tokenizer {
    /// The instance, created by `methods.xCreate`, freed by `methods.xDelete` on drop.
    instance: *mut ffi::Fts5Tokenizer,
    /// The module's functions (static C functions for unicode61).
    methods: ffi::fts5_tokenizer,
}

// SAFETY: the instance is plain heap memory used only through `&mut self` (tokenizing writes
// to its fold buffer), with no thread-local state; sqlite3_malloc/free are thread-safe in the
// bundled (serialized) build.
unsafe impl Send for Tokenizer {}

/// What receives each token: the folded bytes and where they stand in the text.
type OnToken<'f> = dyn FnMut(&[u8], Range<usize>) -> ControlFlow<()> + 'f;

/// The context a tokenizer callback gets back through its `void *`.
struct Callback<'f> {
    on_token: &'f mut OnToken<'f>,
    /// A panic of `on_token`, carried across the C frames and resumed on the Rust side.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

unsafe extern "C" fn token_trampoline(
    ctx: *mut c_void,
    _flags: c_int,
    token: *const c_char,
    len: c_int,
    start: c_int,
    end: c_int,
) -> c_int {
    // SAFETY: `ctx` is the `Callback` that `tokenize` passed to xTokenize, alive for the call.
    let callback = unsafe { &mut *(ctx as *mut Callback<'_>) };
    let bytes: &[u8] = match usize::try_from(len) {
        // SAFETY: unicode61 hands over `len` readable bytes of its fold buffer.
        Ok(len) if len > 0 && !token.is_null() => unsafe {
            std::slice::from_raw_parts(token.cast::<u8>(), len)
        },
        _ => &[],
    };
    let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0);
    match catch_unwind(AssertUnwindSafe(|| (callback.on_token)(bytes, range))) {
        Ok(ControlFlow::Continue(())) => ffi::SQLITE_OK,
        // unicode61 turns SQLITE_DONE into SQLITE_OK: a clean early stop.
        Ok(ControlFlow::Break(())) => ffi::SQLITE_DONE,
        Err(panic) => {
            callback.panic = Some(panic);
            ffi::SQLITE_ERROR
        }
    }
}

fn error(code: c_int, what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(what.to_string()))
}

/// The connection's `fts5_api`, which lives as long as the connection.
fn fts5_api(conn: &Connection) -> rusqlite::Result<*mut ffi::fts5_api> {
    let mut api: *mut ffi::fts5_api = ptr::null_mut();
    let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: the documented way to obtain the pointer (FTS5 docs, "Extending FTS5"): bind the
    // address of `api` as a pointer of type "fts5_api_ptr" and step `SELECT fts5(?1)`. The
    // statement is finalized before `api` goes out of scope; the type name is 'static.
    let rc = unsafe {
        let db = conn.handle();
        let mut rc = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &mut stmt,
            ptr::null_mut(),
        );
        if rc == ffi::SQLITE_OK {
            rc = ffi::sqlite3_bind_pointer(
                stmt,
                1,
                (&raw mut api).cast::<c_void>(),
                c"fts5_api_ptr".as_ptr(),
                None,
            );
        }
        if rc == ffi::SQLITE_OK && ffi::sqlite3_step(stmt) != ffi::SQLITE_ROW {
            rc = ffi::SQLITE_ERROR;
        }
        ffi::sqlite3_finalize(stmt);
        rc
    };
    if rc != ffi::SQLITE_OK || api.is_null() {
        return Err(error(rc.max(ffi::SQLITE_ERROR), "FTS5 is not available"));
    }
    Ok(api)
}

impl Tokenizer {
    /// The tokenizer `notes_fts` uses, found through `conn`'s FTS5 module.
    pub fn unicode61(conn: &Connection) -> rusqlite::Result<Self> {
        let api = fts5_api(conn)?;
        let mut methods = ffi::fts5_tokenizer {
            xCreate: None,
            xDelete: None,
            xTokenize: None,
        };
        let mut user_data: *mut c_void = ptr::null_mut();
        let mut instance: *mut ffi::Fts5Tokenizer = ptr::null_mut();
        let mut args: [*const c_char; 2] = ARGS.map(CStr::as_ptr);
        // SAFETY: `api` is valid while `conn` is open, which covers this block; xFindTokenizer
        // fills `methods` and `user_data`, and xCreate reads `args` (2 NUL-terminated strings)
        // only during the call.
        let rc = unsafe {
            match (*api).xFindTokenizer {
                Some(find) => {
                    let rc = find(api, TOKENIZER.as_ptr(), &mut user_data, &mut methods);
                    match (rc, methods.xCreate) {
                        (ffi::SQLITE_OK, Some(create)) => {
                            create(user_data, args.as_mut_ptr(), 2, &mut instance)
                        }
                        (rc, _) => rc.max(ffi::SQLITE_ERROR),
                    }
                }
                None => ffi::SQLITE_ERROR,
            }
        };
        if rc != ffi::SQLITE_OK
            || instance.is_null()
            || methods.xTokenize.is_none()
            || methods.xDelete.is_none()
        {
            return Err(error(rc.max(ffi::SQLITE_ERROR), "no unicode61 tokenizer"));
        }
        Ok(Tokenizer { instance, methods })
    }

    /// Call `on_token(token, byte_range)` for every token of `text`, in order, until it breaks.
    /// The token is folded (lower case, diacritics removed) as FTS5 stores it; the range is
    /// where it stands in `text`.
    pub fn tokenize(
        &mut self,
        text: &str,
        mut on_token: impl FnMut(&[u8], Range<usize>) -> ControlFlow<()>,
    ) -> rusqlite::Result<()> {
        let len = c_int::try_from(text.len())
            .map_err(|_| error(ffi::SQLITE_TOOBIG, "text too long to tokenize"))?;
        let Some(tokenize) = self.methods.xTokenize else {
            return Err(error(ffi::SQLITE_MISUSE, "tokenizer without xTokenize"));
        };
        let mut callback = Callback {
            on_token: &mut on_token,
            panic: None,
        };
        // SAFETY: `instance` came from this module's xCreate and is used by one caller at a
        // time (`&mut self`); `text` outlives the call; the trampoline only casts `ctx` back to
        // the `Callback` passed here.
        let rc = unsafe {
            tokenize(
                self.instance,
                (&raw mut callback).cast::<c_void>(),
                ffi::FTS5_TOKENIZE_DOCUMENT,
                text.as_ptr().cast::<c_char>(),
                len,
                Some(token_trampoline),
            )
        };
        if let Some(panic) = callback.panic {
            resume_unwind(panic);
        }
        if rc != ffi::SQLITE_OK {
            return Err(error(rc, "tokenizing failed"));
        }
        Ok(())
    }
}

impl Drop for Tokenizer {
    fn drop(&mut self) {
        if let Some(delete) = self.methods.xDelete {
            // SAFETY: `instance` came from this module's xCreate and is not used afterwards.
            unsafe { delete(self.instance) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::fts_query::segment_cjk;

    fn tokens(tokenizer: &mut Tokenizer, text: &str) -> Vec<(String, Range<usize>)> {
        let mut out = Vec::new();
        tokenizer
            .tokenize(text, |token, range| {
                out.push((String::from_utf8(token.to_vec()).unwrap(), range));
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    #[test]
    fn tokens_and_offsets_match_what_fts5_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
             CREATE VIRTUAL TABLE v USING fts5vocab(t, instance);",
        )
        .unwrap();
        let text = segment_cjk(
            "Herr MÜLLER's café—naïve Straße, e-mail: x@y.z; 42 Ⅻ ĳ ǅ \
             東京都に住んで Rust言語 Привет ﬁne ﷺ résumé\u{301}",
        );
        conn.execute("INSERT INTO t(rowid, body) VALUES (1, ?1)", [text.as_ref()])
            .unwrap();
        let stored: Vec<(String, i64)> = conn
            .prepare("SELECT term, offset FROM v ORDER BY offset")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();

        let mut tokenizer = Tokenizer::unicode61(&conn).unwrap();
        let ours = tokens(&mut tokenizer, &text);
        let as_stored: Vec<(String, i64)> = ours
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (t.clone(), i as i64))
            .collect();
        assert_eq!(as_stored, stored);
        // Every range holds exactly its token: tokenizing the slice alone gives it back.
        for (token, range) in &ours {
            let alone: Vec<String> = tokens(&mut tokenizer, &text[range.clone()])
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            assert_eq!(alone, std::slice::from_ref(token), "{range:?}");
        }
        assert!(ours.iter().any(|(t, _)| t == "muller"));
        assert!(ours.iter().any(|(t, _)| t == "東"));
        // Byte ranges cut the original text at the token, whatever its case or accents.
        let spans: Vec<&str> = ours.iter().map(|(_, r)| &text[r.clone()]).collect();
        assert_eq!(&spans[..4], ["Herr", "MÜLLER", "s", "café"]);
        assert!(spans.contains(&"Straße"));
        assert!(spans.contains(&"Rust"));
    }

    #[test]
    fn tokenizing_stops_when_the_callback_breaks() {
        let conn = Connection::open_in_memory().unwrap();
        let mut tokenizer = Tokenizer::unicode61(&conn).unwrap();
        let mut seen = Vec::new();
        tokenizer
            .tokenize("one two three four", |token, _| {
                seen.push(token.to_vec());
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
        assert!(tokens(&mut tokenizer, "  ,;  ").is_empty());
    }

    #[test]
    fn a_tokenizer_outlives_its_connection() {
        let conn = Connection::open_in_memory().unwrap();
        let mut tokenizer = Tokenizer::unicode61(&conn).unwrap();
        drop(conn);
        let got: Vec<String> = tokens(&mut tokenizer, "Ça Va")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(got, ["ca", "va"]);
    }

    #[test]
    fn a_panic_in_the_callback_reaches_the_caller() {
        let conn = Connection::open_in_memory().unwrap();
        let mut tokenizer = Tokenizer::unicode61(&conn).unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            tokenizer.tokenize("boom", |_, _| panic!("from the callback"))
        }));
        assert!(caught.is_err());
        assert_eq!(tokens(&mut tokenizer, "still works").len(), 2);
    }
}
