//! The Model Context Protocol as the actors speak it: JSON-RPC messages in, JSON-RPC answers out.
//! Transport concerns (HTTP status codes, headers, SSE framing) are the front's; this module only
//! knows methods, sessions, tools, resources and prompts.

pub mod change_tools;
pub mod completion;
pub mod context;
pub mod dispatch;
#[cfg(feature = "conformance")]
pub mod fixtures;
pub mod history_tools;
pub mod jsonrpc;
pub mod listen;
pub mod prompts;
pub mod protocol;
pub mod resources;
pub mod scoped;
pub mod stateless;
pub mod tool;
pub mod tools;
