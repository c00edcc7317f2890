//! What a note is, below both the [`crate::vault`] (its files) and the [`crate::index`] (its
//! database): a checked note path, a folder filter, a wikilink and a note's resource URI. Pure
//! values, no I/O.

mod link;
mod path;
pub mod uri;

pub use link::WikiLink;
pub use path::{parse_folder, NotePath, MAX_NAME_BYTES, MAX_PATH_CHARS};
