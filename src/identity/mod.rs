//! Identity resolution: the identifiers of Italian public services read
//! as real exports write them, each in one canonical form: codici fiscali
//! (`codice_fiscale.rs`: check character, omocodia, temporary codes, the
//! date, sex and place they encode), phone numbers to E.164 (`phone.rs`),
//! e-mail addresses and PEC (`email.rs`), names (`name.rs`). SQL reaches
//! them through `crate::functions`.
//!
//! The identity step (`step.rs`) links the CRM's records into profiles
//! and attributes each contact to one (`resolve.rs`), with ids that stay
//! the same night after night (`ids.rs`).

pub mod codice_fiscale;
pub mod email;
pub mod ids;
pub mod name;
pub mod phone;
pub mod probabilistic;
pub mod resolve;
pub mod step;

pub use step::{IdentityError, IdentityResult, observe, output_schemas, resolve_identities};
