//! The pieces every page is built from, so the same thing looks and behaves the same everywhere:
//! the page header, the error, empty and loading states, and the URL encoder. Times are shown
//! through [`crate::time`].

pub mod header;
pub mod states;
pub mod url;

pub use header::PageHeader;
pub use states::{load_error, EmptyState, ErrorNote, Loading};
