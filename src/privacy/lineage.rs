//! Where personal data goes: the tags of every source column (declared,
//! or found by content), followed through each step's DataFusion plan to
//! the columns of every table, so that `validate` can name the output,
//! the column and the path a codice fiscale would take to be published.
//!
//! A column keeps the tags of every input column its expression reads,
//! except through what clears them: `pseudonym()`, a comparison or test
//! (`cf_is_valid` and `email_is_pec` among them)
//! of an identifier or a contact (true or false names no one; of a
//! special category or a quasi-identifier it still tells something, so
//! those tags stay), and aggregates that count rows (`count`,
//! `approx_distinct`, ranks). Every other aggregate keeps the tags of what
//! it reads: `min`, `max` and `string_agg` return a value, and a sum or an
//! average over one citizen's rows is that citizen's value
//! (`avg(CAST(phone AS BIGINT))` is the phone number); summing the outcome
//! of a test (`sum(CASE WHEN phone IS NULL THEN 1 ELSE 0 END)`) reads no
//! tag, so it carries none. Group keys keep their tags: nothing in SQL
//! proves that every group holds `min_cell` citizens. What a codice
//! fiscale encodes (`cf_birth_date`, `cf_sex`, `cf_comune`) is a
//! quasi-identifier.

use std::collections::HashMap;
use std::fmt;

use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};

use super::PersonalKind;
use crate::pipeline::Sensitivity;

/// Why a column is personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Its source's `tags` say so.
    Declared,
    /// Values of this kind were found in a sample of it.
    Content(PersonalKind),
    /// It holds raw lines a source could not read (a `__rejected` table).
    Quarantine,
    /// Client addresses kept whole (`ip_mask: none`).
    Unmasked,
    /// Replaced by a keyed pseudonym of this kind as its source was read
    /// (`pseudonymize`): still personal data (GDPR art. 4(5)), which the
    /// guard lets through, and which joins only with pseudonyms of its kind.
    Pseudonymised(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Declared => f.write_str("tagged in its source"),
            Why::Content(kind) => write!(f, "{} found in its values", kind.description()),
            Why::Quarantine => f.write_str("raw lines of a quarantine table"),
            Why::Unmasked => f.write_str("whole client addresses (`ip_mask: none`)"),
            Why::Pseudonymised(kind) => write!(f, "keyed pseudonyms (`{kind}`) of its source"),
        }
    }
}

/// A tag a column carries: how sensitive, why, and the columns it came by,
/// from the source column (`citizens.codice_fiscale`) to this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// How sensitive.
    pub tag: Sensitivity,
    /// Why.
    pub why: Why,
    /// `table.column` hops, the source column first.
    pub path: Vec<String>,
}

impl Taint {
    /// The source column it started from.
    pub fn origin(&self) -> &str {
        self.path.first().map_or("", String::as_str)
    }

    /// Whether the column holds keyed pseudonyms, not values in the clear.
    pub fn is_pseudonym(&self) -> bool {
        matches!(self.why, Why::Pseudonymised(_))
    }

    /// The path as messages show it: `` `a.x` → `b.y` ``.
    pub fn route(&self) -> String {
        self.path
            .iter()
            .map(|hop| format!("`{hop}`"))
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The tags of each column of a table, in column order.
pub type ColumnTaints = Vec<(String, Vec<Taint>)>;

/// The tags of every table registered so far: sources, quarantine tables,
/// steps.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    tables: HashMap<String, ColumnTaints>,
}

impl Lineage {
    /// Records a table's columns and their tags.
    pub fn set_table(&mut self, table: &str, columns: ColumnTaints) {
        self.tables.insert(table.to_string(), columns);
    }

    /// The columns of a table and their tags, if it is known.
    pub fn table(&self, table: &str) -> Option<&ColumnTaints> {
        self.tables.get(table)
    }

    /// Records the table a step makes from its plan: each column with the
    /// tags its expression carries, the step's column added to each path.
    pub fn record_step(&mut self, step: &str, plan: &LogicalPlan) {
        self.record(step, plan, true);
    }

    /// Records a table civica makes on the way to a step's (the rows of a
    /// profiled step before objectors are left out): its columns carry the
    /// tags of its plan, and paths do not name it.
    pub fn record_hidden(&mut self, table: &str, plan: &LogicalPlan) {
        self.record(table, plan, false);
    }

    fn record(&mut self, step: &str, plan: &LogicalPlan, named: bool) {
        let taints = self.of_plan(plan);
        let columns = plan
            .schema()
            .fields()
            .iter()
            .zip(taints)
            .map(|(field, taints)| {
                let hop = format!("{step}.{}", field.name());
                let taints = taints
                    .into_iter()
                    .map(|mut taint| {
                        if named {
                            taint.path.push(hop.clone());
                        }
                        taint
                    })
                    .collect();
                (field.name().clone(), taints)
            })
            .collect();
        self.set_table(step, columns);
    }

    /// The joins of `plan` that match a keyed pseudonym with a value in
    /// the clear (`calls.caller_number`, pseudonymised, with
    /// `citizens.phone`): no row of them can match. One sentence each.
    pub fn pseudonym_joins(&self, plan: &LogicalPlan) -> Vec<String> {
        let mut found = Vec::new();
        let _ = plan.apply(|node| {
            // An earlier step read by this one: its joins were its own.
            if let LogicalPlan::SubqueryAlias(alias) = node
                && self.tables.contains_key(alias.alias.table())
            {
                return Ok(TreeNodeRecursion::Jump);
            }
            if let LogicalPlan::Join(join) = node {
                let left = self.of_plan(&join.left);
                let right = self.of_plan(&join.right);
                for (l, r) in &join.on {
                    let l = self.of_expr(l, join.left.schema(), &left);
                    let r = self.of_expr(r, join.right.schema(), &right);
                    for (a, b) in [(&l, &r), (&r, &l)] {
                        found.extend(mismatch(a, b));
                    }
                }
                // The planner leaves `ON a = b` in the filter until the
                // optimiser takes the equalities out.
                if let Some(filter) = &join.filter
                    && let Ok(both) = join.left.schema().join(join.right.schema())
                {
                    let taints = [left, right].concat();
                    let _ = filter.apply(|expr| {
                        if let Expr::BinaryExpr(b) = expr
                            && b.op == datafusion::logical_expr::Operator::Eq
                        {
                            let l = self.of_expr(&b.left, &both, &taints);
                            let r = self.of_expr(&b.right, &both, &taints);
                            for (x, y) in [(&l, &r), (&r, &l)] {
                                found.extend(mismatch(x, y));
                            }
                        }
                        Ok(TreeNodeRecursion::Continue)
                    });
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found.sort();
        found.dedup();
        found
    }

    /// The tags of each output column of a plan, in schema order.
    pub fn of_plan(&self, plan: &LogicalPlan) -> Vec<Vec<Taint>> {
        let width = plan.schema().fields().len();
        let taints = self.walk(plan);
        match taints.len() == width {
            true => taints,
            // A node this walk does not know the shape of: every column
            // may carry what any input carries.
            false => vec![merged(self.all_inputs(plan)); width],
        }
    }

    fn walk(&self, plan: &LogicalPlan) -> Vec<Vec<Taint>> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let known = self.tables.get(scan.table_name.table());
                scan.projected_schema
                    .fields()
                    .iter()
                    .map(|field| {
                        known
                            .and_then(|columns| {
                                columns.iter().find(|(name, _)| name == field.name())
                            })
                            .map(|(_, taints)| taints.clone())
                            .unwrap_or_default()
                    })
                    .collect()
            }
            LogicalPlan::Projection(p) => self.of_exprs(&p.expr, &p.input),
            LogicalPlan::Aggregate(a) => {
                let mut taints = self.of_exprs(&a.group_expr, &a.input);
                taints.extend(self.of_exprs(&a.aggr_expr, &a.input));
                // Grouping sets add an internal grouping id.
                taints.resize(a.schema.fields().len(), Vec::new());
                taints
            }
            LogicalPlan::Window(w) => {
                let mut taints = self.of_plan(&w.input);
                taints.extend(self.of_exprs(&w.window_expr, &w.input));
                taints
            }
            LogicalPlan::Join(j) => {
                let left = self.of_plan(&j.left);
                let right = self.of_plan(&j.right);
                match j.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti => left,
                    JoinType::RightSemi | JoinType::RightAnti => right,
                    JoinType::LeftMark => [left, vec![Vec::new()]].concat(),
                    JoinType::RightMark => [right, vec![Vec::new()]].concat(),
                    _ => [left, right].concat(),
                }
            }
            LogicalPlan::Union(u) => {
                let mut taints = vec![Vec::new(); u.schema.fields().len()];
                for input in &u.inputs {
                    for (slot, more) in taints.iter_mut().zip(self.of_plan(input)) {
                        add_all(slot, more);
                    }
                }
                taints
            }
            LogicalPlan::RecursiveQuery(r) => {
                let mut taints = self.of_plan(&r.static_term);
                for (slot, more) in taints.iter_mut().zip(self.of_plan(&r.recursive_term)) {
                    add_all(slot, more);
                }
                taints
            }
            LogicalPlan::Distinct(datafusion::logical_expr::Distinct::On(on)) => {
                self.of_exprs(&on.select_expr, &on.input)
            }
            // A step read by a later one is inlined as its plan under its
            // name: its recorded columns give the path through it (and
            // the walk anything a CTE of the same name would add).
            LogicalPlan::SubqueryAlias(alias) => {
                let mut taints = self.of_plan(&alias.input);
                if let Some(recorded) = self.tables.get(alias.alias.table())
                    && recorded.len() == taints.len()
                    && recorded
                        .iter()
                        .zip(alias.schema.fields())
                        .all(|((name, _), field)| name == field.name())
                {
                    for ((_, through), slot) in recorded.iter().zip(taints.iter_mut()) {
                        let walked = std::mem::replace(slot, through.clone());
                        add_all(slot, walked);
                    }
                }
                taints
            }
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::Distinct(_) => match plan.inputs().as_slice() {
                [input] => self.of_plan(input),
                _ => Vec::new(),
            },
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
                vec![Vec::new(); plan.schema().fields().len()]
            }
            // Unnest, extensions and the rest: the caller falls back to
            // every input's tags on every column.
            _ => Vec::new(),
        }
    }

    /// Every tag any input of `plan` carries.
    fn all_inputs(&self, plan: &LogicalPlan) -> Vec<Vec<Taint>> {
        plan.inputs()
            .into_iter()
            .flat_map(|input| self.of_plan(input))
            .collect()
    }

    fn of_exprs(&self, exprs: &[Expr], input: &LogicalPlan) -> Vec<Vec<Taint>> {
        let taints = self.of_plan(input);
        exprs
            .iter()
            .map(|expr| self.of_expr(expr, input.schema(), &taints))
            .collect()
    }

    /// The tags an expression over `schema` (whose columns carry `input`)
    /// carries.
    fn of_expr(&self, expr: &Expr, schema: &DFSchema, input: &[Vec<Taint>]) -> Vec<Taint> {
        match expr {
            Expr::Column(column) => schema
                .maybe_index_of_column(column)
                .and_then(|i| input.get(i).cloned())
                .unwrap_or_default(),
            Expr::ScalarFunction(f) if CLEARING_FUNCTIONS.contains(&f.name()) => Vec::new(),
            Expr::ScalarFunction(f) if TESTS.contains(&f.name()) => {
                self.of_predicate(expr, schema, input)
            }
            Expr::ScalarFunction(f) if DECODING.contains(&f.name()) => {
                let mut taints = self.of_children(expr, schema, input);
                for taint in &mut taints {
                    if taint.tag != Sensitivity::Special {
                        taint.tag = Sensitivity::QuasiIdentifier;
                    }
                }
                taints
            }
            Expr::AggregateFunction(f) if COUNTING.contains(&f.func.name()) => Vec::new(),
            Expr::WindowFunction(w) if COUNTING.contains(&w.fun.name()) => Vec::new(),
            Expr::BinaryExpr(b) if b.op.supports_propagation() || b.op.is_logic_operator() => {
                self.of_predicate(expr, schema, input)
            }
            Expr::Like(_)
            | Expr::SimilarTo(_)
            | Expr::Not(_)
            | Expr::IsNotNull(_)
            | Expr::IsNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Between(_)
            | Expr::InList(_)
            | Expr::Exists(_)
            | Expr::InSubquery(_)
            | Expr::SetComparison(_) => self.of_predicate(expr, schema, input),
            Expr::ScalarSubquery(sub) => merged(self.of_plan(&sub.subquery)),
            _ => self.of_children(expr, schema, input),
        }
    }

    /// The tags of an expression's operands, together.
    fn of_children(&self, expr: &Expr, schema: &DFSchema, input: &[Vec<Taint>]) -> Vec<Taint> {
        let mut taints = Vec::new();
        let _ = expr.apply_children(|child| {
            add_all(&mut taints, self.of_expr(child, schema, input));
            Ok(TreeNodeRecursion::Continue)
        });
        taints
    }

    /// The tags of a comparison or test: true or false of an identifier
    /// or a contact names no one, but of a special category or a
    /// quasi-identifier (`disability = true`, `birth_date < …`) it still
    /// tells something of the citizen.
    fn of_predicate(&self, expr: &Expr, schema: &DFSchema, input: &[Vec<Taint>]) -> Vec<Taint> {
        let mut taints = self.of_children(expr, schema, input);
        taints.retain(|t| matches!(t.tag, Sensitivity::Special | Sensitivity::QuasiIdentifier));
        taints
    }
}

/// Scalar functions whose result no longer holds the value: the keyed
/// pseudonym, and lengths and counts of characters.
const CLEARING_FUNCTIONS: &[&str] = &[
    "pseudonym",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
];

/// Scalar functions that test a value (true or false, as a comparison).
const TESTS: &[&str] = &["cf_is_valid", "email_is_pec"];

/// Scalar functions that read from an identifier what it encodes: the
/// birth date, sex and birthplace of a codice fiscale, each a
/// quasi-identifier.
const DECODING: &[&str] = &["cf_birth_date", "cf_sex", "cf_comune"];

/// Aggregate and window functions whose result counts rows or ranks
/// them, whatever the values: nothing of a value is left in it.
const COUNTING: &[&str] = &[
    "count",
    "approx_distinct",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
];

/// When one side of an equality holds only pseudonyms and the other a
/// value in the clear of an identifier or a contact: what to say.
fn mismatch(pseudonyms: &[Taint], clear: &[Taint]) -> Option<String> {
    let kind = pseudonyms.iter().find_map(|t| match &t.why {
        Why::Pseudonymised(kind) if pseudonyms.iter().all(Taint::is_pseudonym) => Some(kind),
        _ => None,
    })?;
    let raw = clear.iter().find(|t| {
        !t.is_pseudonym() && matches!(t.tag, Sensitivity::Identifier | Sensitivity::Contact)
    })?;
    Some(format!(
        "`{}` holds keyed pseudonyms and is joined with `{}`, written in the clear: no row can match. Pass that side through pseudonym('{kind}', …) in the SQL, or `pseudonymize` it at its source",
        pseudonyms[0].origin(),
        raw.origin()
    ))
}

/// Adds the tags of `more` not already in `into` (by source column).
fn add_all(into: &mut Vec<Taint>, more: Vec<Taint>) {
    for taint in more {
        if !into.iter().any(|t| t.origin() == taint.origin()) {
            into.push(taint);
        }
    }
}

/// Every tag of any column, once.
fn merged(columns: Vec<Vec<Taint>>) -> Vec<Taint> {
    let mut all = Vec::new();
    for taints in columns {
        add_all(&mut all, taints);
    }
    all
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn lineage_of(sql: &str) -> Vec<(String, Vec<String>)> {
        taints_of(sql)
            .await
            .iter()
            .map(|(column, taints)| (column.clone(), taints.iter().map(Taint::route).collect()))
            .collect()
    }

    async fn taints_of(sql: &str) -> ColumnTaints {
        let ctx = SessionContext::new();
        crate::functions::register_functions(&ctx);
        let schema = Arc::new(Schema::new(vec![
            Field::new("citizen_id", DataType::Int64, false),
            Field::new("codice_fiscale", DataType::Utf8, true),
            Field::new("phone", DataType::Utf8, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![]]).expect("table");
        ctx.register_table("citizens", Arc::new(table))
            .expect("register");
        let mut lineage = Lineage::default();
        let taint = |column: &str, tag| Taint {
            tag,
            why: Why::Declared,
            path: vec![format!("citizens.{column}")],
        };
        lineage.set_table(
            "citizens",
            vec![
                ("citizen_id".into(), vec![]),
                (
                    "codice_fiscale".into(),
                    vec![taint("codice_fiscale", Sensitivity::Identifier)],
                ),
                ("phone".into(), vec![taint("phone", Sensitivity::Contact)]),
            ],
        );
        let key = crate::privacy::PseudonymKey::new(&[7; 32], "a test").expect("key");
        crate::privacy::register_pseudonym(&ctx, Some(key));
        let plan = ctx.sql(sql).await.expect("plan").logical_plan().clone();
        lineage.record_step("out", &plan);
        lineage.table("out").expect("recorded").clone()
    }

    #[tokio::test]
    async fn normalised_identifiers_keep_their_tags_tests_clear_them_and_decoding_gives_quasi_identifiers()
     {
        let found = taints_of(
            "SELECT cf_normalize(codice_fiscale) AS cf, phone_normalize(phone, 'IT') AS p, \
                    cf_is_valid(codice_fiscale) AS valid, email_is_pec(phone) AS pec, \
                    cf_birth_date(codice_fiscale) AS born, cf_sex(codice_fiscale) AS sex, \
                    cf_comune(codice_fiscale) AS comune \
             FROM citizens",
        )
        .await;
        let tags: Vec<(&str, Vec<Sensitivity>)> = found
            .iter()
            .map(|(column, taints)| (column.as_str(), taints.iter().map(|t| t.tag).collect()))
            .collect();
        assert_eq!(
            tags,
            [
                ("cf", vec![Sensitivity::Identifier]),
                ("p", vec![Sensitivity::Contact]),
                ("valid", vec![]),
                ("pec", vec![]),
                ("born", vec![Sensitivity::QuasiIdentifier]),
                ("sex", vec![Sensitivity::QuasiIdentifier]),
                ("comune", vec![Sensitivity::QuasiIdentifier]),
            ]
        );
        assert_eq!(
            found[4].1[0].route(),
            "`citizens.codice_fiscale` → `out.born`"
        );
    }

    #[tokio::test]
    async fn tags_follow_columns_through_expressions_joins_and_subqueries() {
        let found = lineage_of(
            "WITH a AS (SELECT citizen_id, upper(codice_fiscale) AS cf FROM citizens) \
             SELECT a.cf AS fiscal, c.citizen_id, concat(c.phone, '') AS p, \
                    (SELECT max(codice_fiscale) FROM citizens) AS top \
             FROM a JOIN citizens c ON c.citizen_id = a.citizen_id",
        )
        .await;
        let route = |column: &str| {
            found
                .iter()
                .find(|(c, _)| c == column)
                .expect(column)
                .1
                .clone()
        };
        assert_eq!(
            route("fiscal"),
            ["`citizens.codice_fiscale` → `out.fiscal`"]
        );
        assert!(route("citizen_id").is_empty());
        assert_eq!(route("p"), ["`citizens.phone` → `out.p`"]);
        assert_eq!(route("top"), ["`citizens.codice_fiscale` → `out.top`"]);
    }

    #[tokio::test]
    async fn pseudonyms_tests_and_counts_clear_tags_but_values_sums_and_group_keys_keep_them() {
        let found = lineage_of(
            "SELECT codice_fiscale, count(*) AS n, count(DISTINCT phone) AS phones, \
                    max(phone) AS last_phone, pseudonym('cf', min(codice_fiscale)) AS key, \
                    bool_or(phone IS NULL) AS no_phone, \
                    sum(CASE WHEN phone IS NULL THEN 1 ELSE 0 END) AS no_phones, \
                    avg(CAST(phone AS BIGINT)) AS phone_as_number, \
                    sum(CAST(substr(codice_fiscale, 7, 2) AS INT)) AS birth_year \
             FROM citizens GROUP BY codice_fiscale",
        )
        .await;
        let tagged: Vec<&str> = found
            .iter()
            .filter(|(_, taints)| !taints.is_empty())
            .map(|(c, _)| c.as_str())
            .collect();
        // A sum or an average over one citizen's rows is that citizen's
        // value: it keeps the tags of what it sums.
        assert_eq!(
            tagged,
            [
                "codice_fiscale",
                "last_phone",
                "phone_as_number",
                "birth_year"
            ]
        );
    }

    #[tokio::test]
    async fn a_union_carries_the_tags_of_each_side() {
        let found = lineage_of(
            "SELECT CAST(citizen_id AS VARCHAR) AS v FROM citizens \
             UNION ALL SELECT phone FROM citizens",
        )
        .await;
        assert_eq!(found[0].1, ["`citizens.phone` → `out.v`"]);
    }
}
