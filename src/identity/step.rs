//! The identity step on a session: reads the CRM and the contact tables,
//! links records into profiles and attributes contacts (`resolve.rs`),
//! gives profiles their stable ids (`ids.rs`), and returns its four tables.
//! Every identifier value it shows is a keyed pseudonym
//! (`evidence = 'phone:<pseudonym>'`); only the CRM's and the sources' own
//! record ids appear as they are.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::{SessionContext, ident};
use rayon::prelude::*;

use super::ids::{IdOrigin, profile_ids};
use super::probabilistic::{self, Column};
use super::resolve::{Attribution, By, Holders, Linker, Row, Seen, attribute, class};
use super::{codice_fiscale, email, name, phone};
use crate::pipeline::{Comparison, IdentifierType};
use crate::plan::{IdentityInput, IdentityPlan};
use crate::privacy::PseudonymKey;

/// Why the identity step failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A table could not be read.
    #[error("cannot read `{table}`: {source}")]
    Read {
        /// The table.
        table: String,
        /// Why.
        source: datafusion::error::DataFusionError,
    },
    /// The previous night's `identity_profiles` could not be read.
    #[error("cannot read the previous `identity_profiles` at {location}: {source}")]
    Previous {
        /// Where.
        location: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No pseudonym key: the step shows identifiers only as pseudonyms.
    #[error(
        "the identity step shows identifiers only as keyed pseudonyms: {}",
        crate::privacy::KeyError::Missing
    )]
    NoKey,
    /// A table could not be built.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// The step's tables and its account.
#[derive(Debug)]
pub struct IdentityResult {
    /// `identity_profiles`.
    pub profiles: RecordBatch,
    /// `identity_links`.
    pub links: RecordBatch,
    /// `identity_review`.
    pub review: RecordBatch,
    /// `touchpoint_attribution`.
    pub attribution: RecordBatch,
    /// CRM records read.
    pub records: usize,
    /// One line for the run's account.
    pub summary: String,
}

/// The schemas of the four tables, with the type of the CRM's id column.
pub fn output_schemas(citizen_id: &DataType) -> [SchemaRef; 4] {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let id = |name: &str, nullable| Field::new(name, citizen_id.clone(), nullable);
    [
        Arc::new(Schema::new(vec![
            text("profile_id", false),
            id("citizen_id", true),
            Field::new("profile_records", DataType::Int64, false),
            text("id_origin", false),
        ])),
        Arc::new(Schema::new(vec![
            id("citizen_id", true),
            id("linked_to", true),
            text("profile_id", false),
            text("rule", false),
            text("evidence", false),
        ])),
        Arc::new(Schema::new(vec![
            id("citizen_id", true),
            id("other_citizen_id", true),
            Field::new("match_probability", DataType::Float64, false),
            text("evidence", false),
        ])),
        Arc::new(Schema::new(vec![
            text("source", false),
            text("record_id", true),
            text("profile_id", true),
            text("rule", true),
            text("reason", true),
            text("evidence", true),
        ])),
    ]
}

/// What a raw identifier value is, once normalised; `None` when blank.
pub fn observe(plan: &IdentityPlan, kind: IdentifierType, raw: &str) -> Option<Seen> {
    if raw.trim().is_empty() {
        return None;
    }
    let (normal, valid) = match kind {
        IdentifierType::Cf | IdentifierType::Spid => {
            let code = codice_fiscale::normalize(raw);
            let valid = code.as_deref().is_some_and(codice_fiscale::is_valid_code);
            (code, valid)
        }
        IdentifierType::Phone => {
            if phone::is_withheld(raw) {
                return Some(Seen::Withheld);
            }
            let number = phone::normalize(raw, plan.phone_region);
            let valid = number.is_some();
            (number, valid)
        }
        IdentifierType::Email => {
            let address = email::normalize(raw);
            let valid = address.is_some();
            (address, valid)
        }
    };
    Some(match normal {
        Some(value) if plan.is_blocked(kind, &value) => Seen::Blocklisted,
        Some(value) if valid => Seen::Usable(value),
        _ => Seen::Invalid,
    })
}

/// A table's rows as the step sees them, ordered by record id.
struct Read {
    /// The id column, in that order.
    ids: ArrayRef,
    /// The ids as text.
    id_texts: Vec<String>,
    rows: Vec<Row>,
    /// The columns the probabilistic tier compares, in that order.
    compared: Vec<Column>,
}

/// A value of a column that is no identifier as the probabilistic tier
/// compares it: a name normalised, a date as written, anything else
/// trimmed and in lower case.
fn comparable(comparison: Comparison, raw: &str) -> Option<String> {
    let raw = raw.trim();
    match comparison {
        _ if raw.is_empty() => None,
        Comparison::Name => name::normalize(raw),
        Comparison::Date => Some(raw.to_string()),
        Comparison::Exact => Some(raw.to_lowercase()),
    }
}

async fn read_table(
    ctx: &SessionContext,
    plan: &IdentityPlan,
    input: &IdentityInput,
    compare: &[(String, Comparison)],
) -> Result<Read, IdentityError> {
    let failed = |source| IdentityError::Read {
        table: input.table.clone(),
        source,
    };
    let identifier = |column: &str| input.identifiers.iter().position(|(c, _)| c == column);
    // A compared column that is an identifier is compared in the canonical
    // form its rule reads; the others are read after the identifiers,
    // each under a name of its own (one may be the id column).
    let others: Vec<(usize, &(String, Comparison))> = compare
        .iter()
        .enumerate()
        .filter(|(_, (column, _))| identifier(column).is_none())
        .collect();
    let columns = std::iter::once(&input.id)
        .chain(input.identifiers.iter().map(|(c, _)| c))
        .map(ident)
        .chain(
            others
                .iter()
                .map(|(i, (c, _))| ident(c).alias(format!("compared {i}"))),
        )
        .collect::<Vec<_>>();
    let frame = ctx
        .table(input.table.as_str())
        .await
        .and_then(|t| t.select(columns))
        .map_err(failed)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(failed)?;
    let batch = concat_batches(&schema, &batches)?;
    let ids_text = cast(batch.column(0), &DataType::Utf8)?;
    let ids_text = ids_text.as_string::<i32>();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&a, &b| ids_text.value(a as usize).cmp(ids_text.value(b as usize)));
    let order = UInt32Array::from(order);
    let rows_read = batch.num_rows();
    let mut rows: Vec<Row> = vec![Vec::new(); rows_read];
    let mut compared: Vec<Column> = compare
        .iter()
        .map(|(column, comparison)| Column {
            name: column.clone(),
            comparator: *comparison,
            values: vec![None; rows_read],
        })
        .collect();
    for (i, (column, kind)) in input.identifiers.iter().enumerate() {
        let values = cast(&take(batch.column(i + 1), &order, None)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut canonical = compared.iter_mut().find(|c| &c.name == column);
        // Contacts repeat their numbers and addresses: each is read once.
        // On one core: the phone library's patterns are behind one lock,
        // and two threads parsing numbers took longer than one.
        let mut seen: HashMap<&str, Option<Seen>> = HashMap::new();
        for (row, slot) in rows.iter_mut().enumerate() {
            if values.is_null(row) {
                continue;
            }
            let raw = values.value(row);
            let found = seen
                .entry(raw)
                .or_insert_with(|| observe(plan, *kind, raw))
                .clone();
            if let (Some(Seen::Usable(value)), Some(c)) = (&found, canonical.as_mut()) {
                c.values[row] = Some(value.clone());
            }
            if let Some(found) = found {
                slot.push((*kind, found));
            }
        }
    }
    for (at, (i, (_, comparison))) in others.iter().enumerate() {
        let column = 1 + input.identifiers.len() + at;
        let values = cast(&take(batch.column(column), &order, None)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        compared[*i].values = (0..rows_read)
            .into_par_iter()
            .map(|row| {
                (!values.is_null(row))
                    .then(|| comparable(*comparison, values.value(row)))
                    .flatten()
            })
            .collect();
    }
    let ids = take(batch.column(0), &order, None)?;
    let id_texts = (0..order.len())
        .map(|i| ids_text.value(order.value(i) as usize).to_string())
        .collect();
    Ok(Read {
        ids,
        id_texts,
        rows,
        compared,
    })
}

/// Last night's profile id of each CRM record, from the published
/// `identity_profiles`; empty on the first night.
async fn previous_profiles(
    ctx: &SessionContext,
    plan: &IdentityPlan,
) -> Result<HashMap<String, String>, IdentityError> {
    let Some(folder) = &plan.published else {
        return Ok(HashMap::new());
    };
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| IdentityError::Previous {
        location: folder.clone(),
        source,
    };
    let Some(frame) = crate::storage::layout::read_published(ctx, folder)
        .await
        .map_err(|e| failed(Box::new(e)))?
    else {
        return Ok(HashMap::new());
    };
    let has = |name: &str| frame.schema().field_with_unqualified_name(name).is_ok();
    if !has("citizen_id") || !has("profile_id") {
        tracing::warn!(target: "civica::identity",
            "the previous `identity_profiles` has no `citizen_id` and `profile_id` columns: profiles without a codice fiscale get new ids");
        return Ok(HashMap::new());
    }
    let batches = frame
        .select(vec![ident("citizen_id"), ident("profile_id")])
        .map_err(|e| failed(Box::new(e)))?
        .collect()
        .await
        .map_err(|e| failed(Box::new(e)))?;
    let mut previous = HashMap::new();
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Utf8)?;
        let profiles = cast(batch.column(1), &DataType::Utf8)?;
        let (ids, profiles) = (ids.as_string::<i32>(), profiles.as_string::<i32>());
        for row in 0..batch.num_rows() {
            if !ids.is_null(row) && !profiles.is_null(row) {
                previous.insert(ids.value(row).to_string(), profiles.value(row).to_string());
            }
        }
    }
    Ok(previous)
}

/// The pseudonymised evidence of a value: `phone:<pseudonym>`.
fn evidence(key: &PseudonymKey, kind: IdentifierType, value: &str) -> String {
    let kind = class(kind).name();
    format!("{kind}:{}", key.pseudonym(kind, value))
}

/// Runs the identity step.
pub async fn resolve_identities(
    ctx: &SessionContext,
    plan: &IdentityPlan,
    key: &PseudonymKey,
) -> Result<IdentityResult, IdentityError> {
    let tier = plan.probabilistic.as_ref();
    let compare = tier.map_or(&[][..], |t| t.columns.as_slice());
    let crm = read_table(ctx, plan, &plan.crm, compare).await?;
    let mut linker = Linker::new(&crm.rows);
    linker.by_rules(&crm.rows, &plan.rules, plan.shared_above);
    // The probabilistic tier: pairs the rules left apart, scored; the sure
    // ones joined (the likeliest first), the doubtful ones for review.
    let mut review: Vec<(usize, usize, f64, String)> = Vec::new();
    let mut tier_account = String::new();
    if let Some(tier) = tier {
        let roots = linker.roots();
        let outcome =
            probabilistic::score(&crm.compared, &tier.settings, &|a, b| roots[a] == roots[b]);
        let levels = |p: &probabilistic::Scored| probabilistic::evidence(&crm.compared, &p.levels);
        let mut sure: Vec<&probabilistic::Scored> = outcome
            .pairs
            .iter()
            .filter(|p| p.probability >= tier.settings.link_above)
            .collect();
        sure.sort_by(|x, y| y.probability.total_cmp(&x.probability));
        let linked_before = linker.links();
        linker.by_scores(sure.iter().map(|p| (p.a, p.b, p.probability, levels(p))));
        let roots = linker.roots();
        review = outcome
            .pairs
            .iter()
            .filter(|p| {
                (tier.settings.review_above..tier.settings.link_above).contains(&p.probability)
                    && roots[p.a] != roots[p.b]
            })
            .map(|p| (p.a, p.b, p.probability, levels(p)))
            .collect();
        tier_account = format!(
            "; probabilistic: {} pairs compared, {} linked, {} for review{}",
            outcome.pairs.len(),
            linker.links() - linked_before,
            review.len(),
            if outcome.skipped_blocks > 0 {
                format!(", {} blocks over max_block skipped", outcome.skipped_blocks)
            } else {
                String::new()
            }
        );
    }
    let profiles = linker.finish();
    let previous = previous_profiles(ctx, plan).await?;
    let ids = profile_ids(&profiles, &crm.id_texts, &previous, key);
    let [
        profiles_schema,
        links_schema,
        review_schema,
        attribution_schema,
    ] = output_schemas(crm.ids.data_type());

    let records = crm.rows.len();
    let profile_records = |p: usize| profiles.members[p].len() as i64;
    let profiles_table = RecordBatch::try_new(
        profiles_schema,
        vec![
            Arc::new(
                (0..records)
                    .map(|r| Some(ids[profiles.profile_of[r]].0.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::clone(&crm.ids),
            Arc::new(
                (0..records)
                    .map(|r| profile_records(profiles.profile_of[r]))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                (0..records)
                    .map(|r| {
                        Some(match ids[profiles.profile_of[r]].1 {
                            IdOrigin::CodiceFiscale => "codice_fiscale",
                            IdOrigin::Inherited => "inherited",
                            IdOrigin::New => "new",
                        })
                    })
                    .collect::<StringArray>(),
            ),
        ],
    )?;

    let indices = |pick: &dyn Fn(&super::resolve::Link) -> usize| {
        UInt32Array::from(
            profiles
                .links
                .iter()
                .map(|l| pick(l) as u32)
                .collect::<Vec<_>>(),
        )
    };
    let links_table = RecordBatch::try_new(
        links_schema,
        vec![
            take(&crm.ids, &indices(&|l| l.record), None)?,
            take(&crm.ids, &indices(&|l| l.linked_to), None)?,
            Arc::new(
                profiles
                    .links
                    .iter()
                    .map(|l| Some(ids[profiles.profile_of[l.record]].0.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                profiles
                    .links
                    .iter()
                    .map(|l| {
                        Some(match &l.by {
                            By::Rule(rule, _) => rule.name(),
                            By::Score(..) => "probabilistic",
                        })
                    })
                    .collect::<StringArray>(),
            ),
            Arc::new(
                profiles
                    .links
                    .iter()
                    .map(|l| {
                        Some(match &l.by {
                            By::Rule(rule, value) => evidence(key, *rule, value),
                            By::Score(probability, levels) => {
                                format!("p={probability:.4};{levels}")
                            }
                        })
                    })
                    .collect::<StringArray>(),
            ),
        ],
    )?;
    let side = |pick: fn(&(usize, usize, f64, String)) -> usize| {
        UInt32Array::from(review.iter().map(|p| pick(p) as u32).collect::<Vec<_>>())
    };
    let review_table = RecordBatch::try_new(
        Arc::clone(&review_schema),
        vec![
            take(&crm.ids, &side(|p| p.0), None)?,
            take(&crm.ids, &side(|p| p.1), None)?,
            Arc::new(review.iter().map(|p| p.2).collect::<Float64Array>()),
            Arc::new(
                review
                    .iter()
                    .map(|p| Some(p.3.as_str()))
                    .collect::<StringArray>(),
            ),
        ],
    )?;

    let holders = Holders::of(&crm.rows, &profiles);
    let (mut source, mut record_id, mut profile_id) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rule, mut reason, mut proof) = (Vec::new(), Vec::new(), Vec::new());
    let mut tally = Vec::new();
    for (name, input) in &plan.touchpoints {
        let read = read_table(ctx, plan, input, &[]).await?;
        let mut attributed = 0;
        for (row, id) in read.rows.iter().zip(read.id_texts) {
            source.push(name.clone());
            record_id.push(id);
            match attribute(row, &holders, &plan.rules, plan.shared_above) {
                Attribution::To {
                    profile,
                    rule: by,
                    value,
                } => {
                    attributed += 1;
                    profile_id.push(Some(ids[profile].0.clone()));
                    rule.push(Some(by.name()));
                    reason.push(None);
                    proof.push(Some(evidence(key, by, &value)));
                }
                Attribution::Not(why) => {
                    profile_id.push(None);
                    rule.push(None);
                    reason.push(Some(why.name()));
                    proof.push(None);
                }
            }
        }
        tally.push(format!("{name} {attributed}/{}", read.rows.len()));
    }
    let attribution_table = RecordBatch::try_new(
        attribution_schema,
        vec![
            Arc::new(StringArray::from(source)),
            Arc::new(StringArray::from(record_id)),
            Arc::new(StringArray::from(profile_id)),
            Arc::new(StringArray::from(rule)),
            Arc::new(StringArray::from(reason)),
            Arc::new(StringArray::from(proof)),
        ],
    )?;
    let with_code = profiles.cf.iter().filter(|cf| cf.is_some()).count();
    let shared: usize = profiles.shared.values().sum();
    let mut summary = format!(
        "{records} records in {} profiles ({with_code} with a codice fiscale), {} links, {} refused, {shared} shared values",
        profiles.members.len(),
        profiles.links.len(),
        profiles.refused
    );
    summary.push_str(&tier_account);
    if !tally.is_empty() {
        summary.push_str(&format!("; attributed {}", tally.join(", ")));
    }
    Ok(IdentityResult {
        profiles: profiles_table,
        links: links_table,
        review: review_table,
        attribution: attribution_table,
        records,
        summary,
    })
}
