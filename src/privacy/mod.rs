//! Privacy by design: keyed pseudonyms (`key.rs`, `pseudonym.rs`) and
//! client addresses masked as logs are read (`ip.rs`), personal data
//! recognised by its content (`detect.rs`, with `codice_fiscale.rs`). The
//! pipeline says what is personal; this module makes it so before any step
//! or output sees it.

pub mod codice_fiscale;
pub mod detect;
pub mod ip;
pub mod key;
pub mod pseudonym;

pub use detect::{PersonalKind, detect, redact_value};
pub use ip::{mask_address, mask_addresses_in};
pub use key::{KeyError, PseudonymKey};
pub use pseudonym::{PseudonymizeError, pseudonymize_table, register_pseudonym};
