//! Privacy by design: keyed pseudonyms (`key.rs`, `pseudonym.rs`). The
//! pipeline says what is personal; this module makes it so before any step
//! or output sees it.

pub mod key;
pub mod pseudonym;

pub use key::{KeyError, PseudonymKey};
pub use pseudonym::{PseudonymizeError, pseudonymize_table, register_pseudonym};
