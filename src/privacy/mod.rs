//! Privacy by design: keyed pseudonyms (`key.rs`, `pseudonym.rs`) and
//! client addresses masked as logs are read (`ip.rs`), personal data
//! recognised by its content (`detect.rs`, with `identity::codice_fiscale`). The
//! pipeline says what is personal; this module makes it so before any step
//! or output sees it.

pub mod content;
pub mod detect;
pub mod erasure;
pub mod guard;
pub mod ip;
pub mod key;
pub mod lineage;
pub mod pseudonym;
pub mod record;

pub use detect::{PersonalKind, detect, detect_in_text, redact_text, redact_value};
pub use ip::{mask_address, mask_addresses_in};
pub use key::{KEY_ENV, KEY_FILE_ENV, KeyError, PseudonymKey};
pub use lineage::{ColumnTaints, Lineage, Taint, Why};
pub use pseudonym::{
    PseudonymizeError, pseudonymize_table, register_pseudonym, register_unusable_pseudonym,
};
