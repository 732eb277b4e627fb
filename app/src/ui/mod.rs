//! The pieces every page is built from, so the same thing looks and behaves the same everywhere:
//! the page and panel headers, form panels, tables, the pager, the error, empty and loading
//! states, a required choice, and the URL encoder. Times are shown through [`crate::time`].

pub mod copy;
pub mod form;
pub mod header;
pub mod highlight;
pub mod html;
pub mod markdown;
pub mod pager;
pub mod select;
pub mod states;
pub mod table;
pub mod url;

pub use copy::CopyButton;
pub use form::FormPanel;
pub use header::{PageHeader, PanelHeader};
pub use markdown::Markdown;
pub use pager::Pager;
pub use select::Select;
pub use states::{in_browser, load_error, EmptyState, ErrorNote, Loading};
pub use table::DataTable;
