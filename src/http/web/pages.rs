//! The pages, as pure functions from data to markup: no I/O here, so each can be tested by
//! rendering it. `maud` escapes every interpolated value; the only pre-escaped HTML inserted
//! is the output of [`super::render`], which is sanitized.

use maud::{html, Markup, PreEscaped};

use super::layout::{breadcrumbs, folder_of, folder_url, note_url, page, timestamp, SearchBox};
use super::render::{encode_path, encode_query, sanitize_snippet};
use super::tool::{FolderPage, ListedNote, NoteView, SearchHit, VaultUsage};
use crate::http::session::WebUser;
use crate::http::LoginKind;

/// The start page of someone signed out.
pub fn sign_in_page(login: LoginKind, next: &str) -> Markup {
    let next = encode_query(next);
    page(
        "Sign in",
        None,
        &SearchBox::default(),
        html! {
            section.welcome {
                h1 { "Your notes, for you and your AI tools" }
                p {
                    "vault keeps a private folder of markdown notes — with "
                    code { "[[wikilinks]]" } ", " code { "#tags" } " and full-text search — "
                    "that you can read and edit here and that AI clients reach over MCP."
                }
                @match login {
                    LoginKind::HuggingFace => {
                        p {
                            a #sign-in.button.primary
                                href=(format!("/login?next={next}"))
                                data-popup-href=(format!("/login?popup=1&next={next}"))
                                { "Sign in with Hugging Face" }
                        }
                        p.muted { "Your notes are tied to your Hugging Face account; nobody else can see them." }
                    }
                    LoginKind::Local => {
                        p {
                            "This server runs in local mode. To sign in, open the one-time sign-in link that "
                            code { "vault-mcp" } " printed in its terminal when it started."
                        }
                    }
                    LoginKind::Unavailable => {
                        p { "Sign-in is not configured on this server, so the web page cannot be used yet." }
                        p.muted {
                            "Operator: set " code { "OAUTH_CLIENT_ID" } ", " code { "OAUTH_CLIENT_SECRET" }
                            " and " code { "OPENID_PROVIDER_URL" } " (a Hugging Face Space with "
                            code { "hf_oauth: true" } " sets them) and restart."
                        }
                    }
                }
            }
        },
    )
}

/// A folder: breadcrumbs, its subfolders with counts, the notes directly in it, paging.
pub fn browse_page(
    user: &WebUser,
    folder: &str,
    listing: &FolderPage,
    cursor: Option<&str>,
) -> Markup {
    let name = folder
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("All notes");
    let here = folder_url(folder);
    html! {
        (page(name, Some(user), &SearchBox::default(), html! {
            (breadcrumbs(folder, true))
            div.page-head {
                h1 { (name) }
                a #new-note.button href=(format!("/new?folder={}", encode_query(folder))) { "New note" }
            }
            @if !listing.folders.is_empty() {
                section aria-labelledby="folders-heading" {
                    h2 #folders-heading { "Folders" }
                    ul.listing.folders {
                        @for f in &listing.folders {
                            @let label = f.path.rsplit('/').next().unwrap_or(&f.path);
                            li {
                                a.folder-link href=(folder_url(&f.path)) { (label) "/" }
                                span.count { (f.notes) (if f.notes == 1 { " note" } else { " notes" }) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="notes-heading" {
                h2 #notes-heading { "Notes" }
                @if listing.notes.is_empty() {
                    p.empty {
                        @if cursor.is_some() { "No more notes here." }
                        @else if listing.folders.is_empty() {
                            "This folder is empty. "
                            a href=(format!("/new?folder={}", encode_query(folder))) { "Write the first note" }
                            "."
                        }
                        @else { "No notes directly in this folder." }
                    }
                } @else {
                    ul.listing.notes {
                        @for n in &listing.notes {
                            li {
                                a.note-link href=(note_url(&n.path)) { (display_title(n)) }
                                span.path { (n.path) }
                                (timestamp(n.updated.as_deref()))
                            }
                        }
                    }
                }
                @if cursor.is_some() || listing.next_cursor.is_some() {
                    nav.pager aria-label="Pages" {
                        @if cursor.is_some() { a href=(here) { "First page" } }
                        @if let Some(next) = &listing.next_cursor {
                            a rel="next" href=(format!("{here}?cursor={}", encode_query(next))) { "Next page" }
                        }
                    }
                }
            }
        }))
    }
}

fn display_title(n: &ListedNote) -> &str {
    if n.title.trim().is_empty() {
        &n.path
    } else {
        &n.title
    }
}

/// A note, rendered, with its tags, backlinks and the Edit and Delete actions.
pub fn note_page(
    user: &WebUser,
    note: &NoteView,
    body_html: &str,
    backlinks: &[ListedNote],
) -> Markup {
    let folder = folder_of(&note.path);
    html! {
        (page(&note.title, Some(user), &SearchBox::default(), html! {
            (breadcrumbs(folder, false))
            div.note-layout {
                article.note aria-label=(note.title) {
                    header.note-head {
                        h1 { (note.title) }
                        p.note-meta {
                            span.path { (note.path) }
                            " · updated " (timestamp(note.updated.as_deref()))
                            " · version " span.version { (note.version) }
                        }
                        @if !note.tags.is_empty() {
                            ul.tags aria-label="Tags" {
                                @for t in &note.tags {
                                    li { a.tag href=(format!("/search?tag={}", encode_query(t))) { "#" (t) } }
                                }
                            }
                        }
                        div.actions {
                            a #edit.button href=(format!("/edit/{}", encode_path(&note.path))) { "Edit" }
                            button #delete.danger type="button"
                                data-path=(note.path) data-version=(note.version)
                                data-folder-url=(folder_url(folder)) { "Delete" }
                        }
                        p #note-error.error role="alert" {}
                    }
                    div #note-body.markdown { (PreEscaped(body_html)) }
                }
                aside.backlinks aria-labelledby="backlinks-heading" {
                    h2 #backlinks-heading { "Backlinks" }
                    @if backlinks.is_empty() {
                        p.muted { "No other note links here yet." }
                    } @else {
                        ul {
                            @for b in backlinks {
                                li {
                                    a.note-link href=(note_url(&b.path)) { (display_title(b)) }
                                    span.path { (b.path) }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

/// The part of a note's body to render under the page's title: most notes start with their
/// title as a heading, and showing it twice would be noise.
pub fn body_below_title<'a>(title: &str, body: &'a str) -> &'a str {
    let trimmed = body.trim_start();
    let (first, rest) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
    match first.strip_prefix("# ") {
        Some(heading) if heading.trim() == title.trim() => rest,
        _ => body,
    }
}

/// What the editor is opened on.
pub enum Editing<'a> {
    /// A new note, its path field prefilled (a folder prefix, or a broken link's target).
    New { path: &'a str },
    /// An existing note as it was read, with its body rendered for the initial preview.
    Existing {
        note: &'a NoteView,
        preview_html: &'a str,
    },
}

/// The editor: path (editable for a new note), title, body with a live preview, Save; and the
/// conflict panel, hidden until a save finds the note changed elsewhere.
pub fn editor_page(user: &WebUser, editing: &Editing<'_>) -> Markup {
    let (heading, mode, path, title, body, version, preview, cancel) = match editing {
        Editing::New { path } => (
            "New note".to_string(),
            "new",
            *path,
            "",
            "",
            0,
            "",
            folder_url(folder_of(path)),
        ),
        Editing::Existing { note, preview_html } => (
            format!("Edit {}", note.title),
            "edit",
            note.path.as_str(),
            note.title.as_str(),
            note.body.as_str(),
            note.version,
            *preview_html,
            note_url(&note.path),
        ),
    };
    html! {
        (page(&heading, Some(user), &SearchBox::default(), html! {
            (breadcrumbs(folder_of(path), false))
            h1 { (heading) }
            form #editor.editor method="post" action="#" data-mode=(mode) data-version=(version)
                data-original-title=(title) data-cancel-url=(cancel) {
                p #editor-error.error role="alert" {}
                div.field {
                    label for="editor-path" { "Path" }
                    @if mode == "new" {
                        input #editor-path type="text" name="path" value=(path) required
                            autocomplete="off" spellcheck="false" aria-describedby="path-hint"
                            autofocus[path.is_empty() || path.ends_with('/')];
                        small #path-hint { "Folders are separated by " code { "/" } "; the name ends in " code { ".md" } "." }
                    } @else {
                        input #editor-path type="text" name="path" value=(path) readonly;
                    }
                }
                div.field {
                    label for="editor-title" { "Title " span.muted { "(optional)" } }
                    input #editor-title type="text" name="title" value=(title) autocomplete="off";
                }
                div.editor-panes {
                    div.field.pane {
                        label for="editor-body" { "Markdown" }
                        textarea #editor-body name="body" rows="20" spellcheck="true"
                            autofocus[mode == "edit"] { (body) }
                    }
                    section.pane aria-labelledby="preview-heading" {
                        h2 #preview-heading { "Preview" }
                        div #preview.markdown { (PreEscaped(preview)) }
                    }
                }
                div.actions {
                    button #save.primary type="submit" { "Save" }
                    a.button href=(cancel) { "Cancel" }
                    span.muted.shortcut { "Ctrl+S saves" }
                }
            }
            (conflict_panel(None, None))
        }))
    }
}

/// The conflict screen: the text being saved beside the note as it is now, with "overwrite
/// with mine" and "discard mine". Rendered hidden and empty in the editor (the script fills it
/// from the 409 answer), or filled when both versions are known here.
pub fn conflict_panel(mine: Option<&str>, theirs: Option<&NoteView>) -> Markup {
    let shown = mine.is_some();
    html! {
        section #conflict.conflict hidden[!shown] aria-labelledby="conflict-heading" tabindex="-1" {
            h2 #conflict-heading { "This note changed since you opened it" }
            p #conflict-message {
                @match theirs {
                    Some(n) => { "Someone (or something) saved version " (n.version) " in the meantime. Nothing was overwritten." }
                    None if shown => { "The note was deleted in the meantime. Nothing was overwritten." }
                    None => {}
                }
            }
            div.conflict-grid {
                div {
                    h3 { "Yours (not saved)" }
                    pre #conflict-mine tabindex="0" { (mine.unwrap_or_default()) }
                }
                div {
                    h3 {
                        "Current "
                        span #conflict-version { @if let Some(n) = theirs { "(version " (n.version) ")" } }
                    }
                    pre #conflict-theirs tabindex="0" data-version=[theirs.map(|n| n.version)] {
                        @if let Some(n) = theirs { (n.body) }
                    }
                }
            }
            div.actions {
                button #overwrite.danger type="button" { "Overwrite with mine" }
                button #discard type="button" { "Discard mine" }
            }
        }
    }
}

/// What a search produced.
pub enum Searched<'a> {
    /// No query and no tag: the search help and every tag.
    Nothing {
        tags: &'a [(String, u64)],
    },
    Results(&'a [SearchHit]),
    /// The query could not be run (e.g. invalid syntax): the reason.
    Refused(&'a str),
}

/// The search page: results with highlighted snippets.
pub fn search_page(
    user: &WebUser,
    query: &str,
    tag: Option<&str>,
    searched: &Searched<'_>,
) -> Markup {
    let title = match (query.is_empty(), tag) {
        (false, _) => format!("Search: {query}"),
        (true, Some(tag)) => format!("#{tag}"),
        (true, None) => "Search".to_string(),
    };
    html! {
        (page(&title, Some(user), &SearchBox { query, tag }, html! {
            h1 { "Search" }
            @if let Some(tag) = tag {
                p.filter {
                    "Notes tagged " span.tag { "#" (tag) } " "
                    @if query.is_empty() {
                        a href="/search" { "(clear)" }
                    } @else {
                        a href=(format!("/search?q={}", encode_query(query))) { "(remove tag)" }
                    }
                }
            }
            @match searched {
                Searched::Nothing { tags } => {
                    p { "Type words in the search box (press " kbd { "/" } " to jump there). "
                        "Use " code { "\"a phrase\"" } ", " code { "prefix*" } ", "
                        code { "-exclude" } " and " code { "OR" } "." }
                    @if !tags.is_empty() {
                        h2 { "Tags" }
                        ul.tags {
                            @for (t, count) in tags.iter() {
                                li {
                                    a.tag href=(format!("/search?tag={}", encode_query(t))) { "#" (t) }
                                    " " span.count { (count) }
                                }
                            }
                        }
                    }
                }
                Searched::Refused(reason) => {
                    p.error role="alert" { (reason) }
                }
                Searched::Results(hits) => {
                    p.muted role="status" {
                        (hits.len()) (if hits.len() == 1 { " result" } else { " results" })
                    }
                    @if !hits.is_empty() {
                        ol.results {
                            @for hit in hits.iter() {
                                li.search-result {
                                    a.note-link href=(note_url(&hit.path)) {
                                        (if hit.title.trim().is_empty() { &hit.path } else { &hit.title })
                                    }
                                    span.path { (hit.path) " · " (timestamp(hit.updated.as_deref())) }
                                    p.snippet { (PreEscaped(sanitize_snippet(&hit.snippet))) }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

/// The placeholder the script replaces with a new token in the set-up snippets.
pub const TOKEN_PLACEHOLDER: &str = "YOUR_TOKEN";

/// Copy-paste set-up for the MCP clients people use, for the server at `mcp_url`: (element id,
/// heading, text). The token is [`TOKEN_PLACEHOLDER`] until one is created.
pub fn setup_snippets(mcp_url: &str) -> Vec<(&'static str, &'static str, String)> {
    // A JSON string literal, also a valid Python and TypeScript string.
    let url = serde_json::to_string(mcp_url).unwrap_or_else(|_| "\"\"".to_string());
    let t = TOKEN_PLACEHOLDER;
    vec![
        (
            "setup-claude-code",
            "Claude Code",
            format!("claude mcp add --transport http vault {mcp_url} --header \"Authorization: Bearer {t}\""),
        ),
        (
            "setup-claude-desktop",
            "Claude Desktop (claude_desktop_config.json)",
            format!(
                r#"{{
  "mcpServers": {{
    "vault": {{
      "command": "npx",
      "args": [
        "-y", "mcp-remote", {url},
        "--header", "Authorization: Bearer ${{VAULT_TOKEN}}"
      ],
      "env": {{ "VAULT_TOKEN": "{t}" }}
    }}
  }}
}}"#
            ),
        ),
        (
            "setup-cursor",
            "Cursor (~/.cursor/mcp.json)",
            format!(
                r#"{{
  "mcpServers": {{
    "vault": {{
      "url": {url},
      "headers": {{ "Authorization": "Bearer {t}" }}
    }}
  }}
}}"#
            ),
        ),
        (
            "setup-vscode",
            "VS Code (.vscode/mcp.json)",
            format!(
                r#"{{
  "servers": {{
    "vault": {{
      "type": "http",
      "url": {url},
      "headers": {{ "Authorization": "Bearer {t}" }}
    }}
  }}
}}"#
            ),
        ),
        (
            "setup-python",
            "Python (pip install \"mcp>=2\" httpx)",
            format!(
                r#"import asyncio

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main():
    headers = {{"Authorization": "Bearer {t}"}}
    async with httpx.AsyncClient(headers=headers) as http:
        async with streamable_http_client({url}, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("search_notes", {{"query": "plan"}})
                print(result.structuredContent)


asyncio.run(main())"#
            ),
        ),
        (
            "setup-typescript",
            "TypeScript (npm install @modelcontextprotocol/sdk)",
            format!(
                r#"import {{ Client }} from "@modelcontextprotocol/sdk/client/index.js";
import {{ StreamableHTTPClientTransport }} from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const transport = new StreamableHTTPClientTransport(new URL({url}), {{
  requestInit: {{ headers: {{ Authorization: "Bearer {t}" }} }},
}});
const client = new Client({{ name: "my-app", version: "1.0.0" }});
await client.connect(transport);
console.log(await client.callTool({{ name: "search_notes", arguments: {{ query: "plan" }} }}));"#
            ),
        ),
    ]
}

/// The lifetimes offered before the token API says which it allows (the script replaces them).
const DEFAULT_TTLS: [(&str, &str); 3] = [("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days")];

/// "12.3 MB"-style sizes for people (decimal units, as file managers show them).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The vault's use of its quotas, from `vault_info` (`None`: it could not be read just now).
fn vault_usage(usage: Option<&VaultUsage>) -> Markup {
    html! {
        section.vault-usage aria-labelledby="vault-heading" {
            h2 #vault-heading { "Your vault" }
            @if let Some(u) = usage {
                @let q = &u.quota;
                dl.usage {
                    dt { "Notes" }
                    dd #usage-notes {
                        meter min="0" max=(q.notes_per_vault.max) value=(q.notes_per_vault.used) {}
                        " " (q.notes_per_vault.used) " of " (q.notes_per_vault.max)
                    }
                    dt { "Size" }
                    dd #usage-bytes {
                        meter min="0" max=(q.vault_bytes.max) value=(q.vault_bytes.used) {}
                        " " (human_bytes(q.vault_bytes.used)) " of " (human_bytes(q.vault_bytes.max))
                    }
                    dt { "MCP sessions" }
                    dd #usage-sessions {
                        (q.sessions_per_user.used) " open, at most " (q.sessions_per_user.max)
                    }
                    dt { "Last change" }
                    dd { (timestamp(u.last_change.as_deref())) }
                    dt { "Search index" }
                    dd #usage-index {
                        @if u.index.healthy { "up to date" }
                        @else { "some files could not be indexed; see the server log, then rebuild the index" }
                    }
                }
                p.muted {
                    "A note that would go past a limit is refused, and nothing stored is lost: "
                    "delete notes to make room."
                }
            } @else {
                p.muted { "Your vault's usage cannot be read right now." }
            }
        }
    }
}

/// Taking your data with you: download the vault, import an archive, delete the account.
fn your_data(user: &WebUser) -> Markup {
    let id = user.caller.user.as_str();
    html! {
        section.your-data aria-labelledby="data-heading" {
            h2 #data-heading { "Your data" }
            h3 { "Export" }
            p {
                "Download every note and attachment of your vault as one .tar.gz archive, "
                "files as they are on disk (open it with any archive tool, or import it here)."
            }
            p { a #export-vault.button href="/api/export" download { "Download my vault" } }
            h3 { "Import" }
            p {
                "Add the files of a .tar.gz or .zip archive to your vault: an export from here, "
                "or an Obsidian vault folder zipped. Obsidian's settings (.obsidian/), its trash "
                "and hidden files are left out; a file already in your vault is kept as it is."
            }
            form #import-form.import-form {
                div.field {
                    label for="import-file" { "Archive" }
                    input #import-file type="file" name="archive" required
                        accept=".zip,.tar.gz,.tgz,application/zip,application/gzip";
                }
                button #import-submit type="submit" { "Import" }
                p #import-error.error role="alert" {}
            }
            div #import-result hidden aria-live="polite" {
                p #import-summary {}
                ul #import-skipped {}
            }
            h3 { "Delete the account" }
            p.warning {
                "This removes your vault, its search index and history, your MCP sessions, "
                "every token and connected application, and signs you out. It cannot be undone: "
                "download your vault first if you want to keep it."
            }
            form #delete-account-form.delete-account-form data-user-id=(id) {
                div.field {
                    label for="delete-confirm" { "Type your user id, " code { (id) } ", to confirm" }
                    input #delete-confirm type="text" name="confirm" required autocomplete="off"
                        spellcheck="false";
                }
                button #delete-account.danger type="submit" disabled { "Delete my account" }
                p #delete-error.error role="alert" {}
            }
        }
    }
}

/// The account page: profile, the vault's usage, token creation (shown once, with set-up),
/// the token list.
pub fn account_page(user: &WebUser, public_url: &str, usage: Option<&VaultUsage>) -> Markup {
    let mcp_url = format!("{public_url}/mcp");
    html! {
        (page("Account", Some(user), &SearchBox::default(), html! {
            h1 { "Account" }
            section.profile aria-labelledby="profile-heading" {
                h2 #profile-heading { "Profile" }
                div.profile-card {
                    @if let Some(avatar) = user.avatar.as_deref().filter(|a| a.starts_with("https://")) {
                        img.avatar.large src=(avatar) alt="" width="64" height="64";
                    }
                    dl {
                        dt { "Username" } dd #profile-username { (user.username) }
                        dt { "User id" } dd { code #profile-user-id { (user.caller.user.as_str()) } }
                        dt { "MCP endpoint" } dd { code #mcp-url { (mcp_url) } }
                    }
                }
            }
            (vault_usage(usage))
            section.tokens aria-labelledby="tokens-heading" {
                h2 #tokens-heading { "MCP access tokens" }
                p {
                    "A token lets an AI client (Claude, Cursor, VS Code, your own code) use your notes over MCP. "
                    "Give each client its own token, so you can revoke one without the others."
                }
                form #token-form.token-form {
                    div.field {
                        label for="token-name" { "Name" }
                        input #token-name type="text" name="name" required maxlength="64"
                            placeholder="e.g. laptop Claude" autocomplete="off";
                    }
                    div.field {
                        label for="token-ttl" { "Lifetime" }
                        select #token-ttl name="ttl" {
                            @for (value, label) in DEFAULT_TTLS {
                                option value=(value) selected[value == "7d"] { (label) }
                            }
                        }
                    }
                    fieldset.field {
                        legend { "Access" }
                        label.choice {
                            input #token-scope-read type="radio" name="scope" value="read";
                            " Read only"
                        }
                        label.choice {
                            input #token-scope-write type="radio" name="scope" value="write" checked;
                            " Read and write"
                        }
                    }
                    div.field {
                        label for="token-folders" { "Only these folders (optional)" }
                        textarea #token-folders name="folders" rows="2" autocomplete="off"
                            aria-describedby="token-folders-help" placeholder="e.g. projects/work" {}
                        small #token-folders-help {
                            "One folder per line; the token reaches each folder and everything \
                             below it, and no other note. Empty: the whole vault."
                        }
                    }
                    button #create-token.primary type="submit" { "Create a token" }
                    p #token-error.error role="alert" {}
                }
                section #new-token-panel.new-token hidden aria-labelledby="new-token-heading" tabindex="-1" {
                    h3 #new-token-heading { "Your new token" }
                    p.warning { "Copy it now: it is shown only this once." }
                    div.copyable {
                        code #new-token {}
                        button.copy type="button" data-copy="new-token" { "Copy" }
                    }
                    h3 { "Set up your client" }
                    @for (id, label, text) in setup_snippets(&mcp_url) {
                        div.setup-block {
                            h4 { (label) }
                            div.copyable {
                                pre.setup { code id=(id) { (text) } }
                                button.copy type="button" data-copy=(id) { "Copy" }
                            }
                        }
                    }
                }
                h3 { "Your tokens" }
                p #token-list-empty.muted { "Loading…" }
                table #token-table.token-table hidden {
                    thead {
                        tr {
                            @for heading in ["Name", "Access", "Created", "Expires", "Last used"] {
                                th scope="col" { (heading) }
                            }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody #token-list {}
                }
                h3 { "Connected applications" }
                p.muted {
                    "Applications you connected by signing in and approving them (claude.ai, \
                     mcp-remote, an SDK's OAuth). Disconnecting one stops its tokens at once."
                }
                p #client-list-empty.muted { "Loading…" }
                table #client-table.token-table hidden {
                    thead {
                        tr {
                            @for heading in ["Application", "Access", "Connected", "Last used"] {
                                th scope="col" { (heading) }
                            }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody #client-list {}
                }
            }
            (your_data(user))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_actors::{Caller, UserId};

    use crate::http::web::tool::FolderCount;

    fn user() -> WebUser {
        WebUser {
            caller: Caller::full(UserId::parse("u1").unwrap()),
            username: "ada".to_string(),
            avatar: Some("https://example.com/a.png".to_string()),
            csrf: "csrf-123".to_string(),
        }
    }

    fn note(path: &str, body: &str) -> NoteView {
        NoteView {
            path: path.to_string(),
            title: "Plan <b>".to_string(),
            body: body.to_string(),
            tags: vec!["work".to_string()],
            version: 7,
            updated: Some("2025-03-04T05:06:07Z".to_string()),
        }
    }

    #[test]
    fn signed_in_pages_carry_csrf_search_and_sign_out() {
        let html = account_page(&user(), "http://127.0.0.1:7860", None).into_string();
        assert!(
            html.contains(r#"<meta name="csrf-token" content="csrf-123">"#),
            "{html}"
        );
        assert!(html.contains(r#"id="search-input""#));
        let logout = concat!(
            r#"<form method="post" action="/logout">"#,
            r#"<input type="hidden" name="csrf" value="csrf-123"><button id="sign-out""#
        );
        assert!(html.contains(logout), "{html}");
        assert!(html.contains(r##"href="#main""##), "skip link");
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("style="), "no inline style");
    }

    #[test]
    fn sign_in_page_depends_on_the_login_kind() {
        let hf = sign_in_page(LoginKind::HuggingFace, "/note/a b.md").into_string();
        assert!(hf.contains(r#"id="sign-in""#));
        assert!(hf.contains(r#"href="/login?next=/note/a%20b.md""#), "{hf}");
        assert!(
            hf.contains(r#"data-popup-href="/login?popup=1&amp;next=/note/a%20b.md""#),
            "{hf}"
        );
        assert!(!hf.contains("csrf-token"));
        let local = sign_in_page(LoginKind::Local, "/browse").into_string();
        assert!(!local.contains(r#"id="sign-in""#) && local.contains("one-time sign-in link"));
        let off = sign_in_page(LoginKind::Unavailable, "/browse").into_string();
        assert!(off.contains("OAUTH_CLIENT_ID"));
    }

    #[test]
    fn browse_page_shows_breadcrumbs_folders_notes_and_paging() {
        let listing = FolderPage {
            notes: vec![ListedNote {
                path: "work/projects/a.md".into(),
                title: "A <i>".into(),
                updated: Some("2025-01-02T03:04:05Z".into()),
            }],
            folders: vec![FolderCount {
                path: "work/projects/old".into(),
                notes: 3,
            }],
            next_cursor: Some("c&1".into()),
        };
        let html = browse_page(&user(), "work/projects", &listing, None).into_string();
        assert!(
            html.contains(r#"<a class="folder-link" href="/browse">All notes</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a class="folder-link" href="/browse/work">work</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span aria-current="page">projects</span>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/browse/work/projects/old">old/</a>"#),
            "{html}"
        );
        assert!(html.contains("3 notes"));
        assert!(
            html.contains(
                r#"<a class="note-link" href="/note/work/projects/a.md">A &lt;i&gt;</a>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/browse/work/projects?cursor=c%261""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/new?folder=work/projects""#),
            "{html}"
        );
        assert!(html.contains("2025-01-02 03:04"));
    }

    #[test]
    fn note_page_has_body_tags_backlinks_and_actions() {
        let n = note("work/plan.md", "text");
        let backlinks = [ListedNote {
            path: "b.md".into(),
            title: "B".into(),
            updated: None,
        }];
        let html = note_page(&user(), &n, "<p>rendered</p>", &backlinks).into_string();
        assert!(
            html.contains(r#"<div class="markdown" id="note-body"><p>rendered</p></div>"#),
            "{html}"
        );
        assert!(
            html.contains("<h1>Plan &lt;b&gt;</h1>"),
            "title escaped: {html}"
        );
        assert!(html.contains(r#"href="/search?tag=work">#work</a>"#));
        assert!(html.contains(r#"class="backlinks""#));
        assert!(html.contains(r#"<a class="note-link" href="/note/b.md">B</a>"#));
        assert!(
            html.contains(r#"data-version="7""#)
                && html.contains(r#"data-folder-url="/browse/work""#)
        );
        assert!(html.contains(r#"href="/edit/work/plan.md""#));
    }

    #[test]
    fn note_title_is_not_repeated_when_the_body_starts_with_it() {
        assert_eq!(body_below_title("Plan", "# Plan\n\ntext"), "\ntext");
        assert_eq!(body_below_title("Plan", "\n# Plan  \nx"), "x");
        assert_eq!(body_below_title("Plan", "# Other\ntext"), "# Other\ntext");
        assert_eq!(body_below_title("Plan", "## Plan\ntext"), "## Plan\ntext");
    }

    #[test]
    fn editor_has_stable_ids_and_the_version() {
        let n = note("a/b.md", "body </textarea><script>");
        let html = editor_page(
            &user(),
            &Editing::Existing {
                note: &n,
                preview_html: "<p>x</p>",
            },
        )
        .into_string();
        for id in [
            "editor-path",
            "editor-title",
            "editor-body",
            "save",
            "preview",
            "conflict",
            "conflict-mine",
            "conflict-theirs",
            "overwrite",
            "discard",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(html.contains(r#"data-version="7""#));
        assert!(
            html.contains("body &lt;/textarea&gt;&lt;script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("readonly"),
            "the path of an existing note is fixed"
        );
        let new = editor_page(&user(), &Editing::New { path: "ideas/" }).into_string();
        assert!(new.contains(r#"data-mode="new""#) && new.contains(r#"data-version="0""#));
        assert!(new.contains(r#"value="ideas/""#));
    }

    #[test]
    fn conflict_panel_shows_both_versions() {
        let theirs = note("a.md", "their <text>");
        let html = conflict_panel(Some("my <text>"), Some(&theirs)).into_string();
        assert!(!html.contains("hidden"), "{html}");
        assert!(
            html.contains("my &lt;text&gt;") && html.contains("their &lt;text&gt;"),
            "{html}"
        );
        assert!(html.contains("(version 7)"));
        let hidden = conflict_panel(None, None).into_string();
        assert!(hidden.contains("hidden"), "{hidden}");
    }

    #[test]
    fn search_results_show_sanitized_snippets() {
        let hits = [SearchHit {
            path: "a.md".into(),
            title: "A".into(),
            snippet: "<mark>fox</mark> <img src=x onerror=alert(1)>".into(),
            updated: None,
        }];
        let html = search_page(&user(), "fox", None, &Searched::Results(&hits)).into_string();
        assert!(html.contains(r#"class="search-result""#));
        assert!(
            html.contains("<mark>fox</mark> &lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"value="fox""#),
            "the query stays in the box"
        );
    }

    #[test]
    fn setup_snippets_name_the_endpoint_and_the_token() {
        let snippets = setup_snippets("https://x.hf.space/mcp");
        assert_eq!(snippets.len(), 6);
        for (_, _, text) in &snippets {
            assert!(
                text.contains("https://x.hf.space/mcp") && text.contains(TOKEN_PLACEHOLDER),
                "{text}"
            );
        }
        let desktop = &snippets[1].2;
        let parsed: serde_json::Value = serde_json::from_str(desktop).unwrap();
        assert_eq!(
            parsed["mcpServers"]["vault"]["env"]["VAULT_TOKEN"],
            TOKEN_PLACEHOLDER
        );
        for json in [&snippets[2].2, &snippets[3].2] {
            serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    }

    #[test]
    fn account_page_has_token_form_ids() {
        let html = account_page(&user(), "http://h", None).into_string();
        for id in [
            "token-name",
            "token-ttl",
            "token-scope-read",
            "token-scope-write",
            "token-folders",
            "create-token",
            "new-token",
            "token-list",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(html.contains("u1"), "user id shown");
    }

    #[test]
    fn account_page_shows_the_vaults_use_of_its_quotas() {
        let usage: VaultUsage = serde_json::from_value(serde_json::json!({
            "notes": 3, "bytes": 1_500_000, "sessions": 1,
            "quota": {
                "notes_per_vault": {"max": 5000, "used": 3},
                "vault_bytes": {"max": 1_073_741_824u64, "used": 1_500_000},
                "sessions_per_user": {"max": 32, "used": 1},
            },
            "index": {"healthy": true},
            "last_change": "2025-06-01T10:20:30Z",
        }))
        .unwrap();
        let html = account_page(&user(), "http://h", Some(&usage)).into_string();
        assert!(html.contains("Your vault"));
        assert!(html.contains("3 of 5000"), "{html}");
        assert!(html.contains("1.5 MB of 1.1 GB"), "{html}");
        assert!(html.contains("1 open, at most 32"));
        assert!(html.contains("2025-06-01 10:20"));
        let html = account_page(&user(), "http://h", None).into_string();
        assert!(html.contains("cannot be read right now"));
    }
}
