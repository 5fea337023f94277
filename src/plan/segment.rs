//! The segment step: features, scaling and model settings checked, and
//! where its fitted model is kept.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Plan, Step, Tables, locations::resolve_location, vars::render_located};
use crate::pipeline::{
    Diagnostic, FeatureName, Impute, KChoice, LegalBasis, Located, ModelMode, ModelType,
    PipelineSpec, Precision, ProfilingSpec, Scaling, SegmentSpec, backticked,
};

/// The segmentation step with checked parameters.
#[derive(Debug, Clone)]
pub struct SegmentPlan {
    /// The per-citizen table it produces.
    pub name: String,
    /// The per-segment profile table it produces.
    pub profiles: String,
    /// The quality table it produces, one row per `k` tried.
    pub quality: String,
    /// The table of moves from the previous run's segments.
    pub migrations: String,
    /// The table it reads.
    pub from: String,
    /// The id column.
    pub id: String,
    /// Feature columns.
    pub features: Vec<String>,
    /// Null handling; `None` makes a null feature an error.
    pub impute: Option<Impute>,
    /// Per feature: whether it goes through ln(1 + x).
    pub log1p: Vec<bool>,
    /// Scaling before the fit.
    pub scaling: Scaling,
    /// Per feature: its plain names for labels.
    pub feature_names: Vec<FeatureName>,
    /// Model settings.
    pub model: ModelPlan,
    /// Where the fitted model is kept, when it is.
    pub model_path: Option<String>,
    /// The folder the `segments` table is published to, when it is: the
    /// previous run's assignments are read from there for the migrations.
    pub published: Option<String>,
    /// Where `segment` and its keys are in the pipeline file.
    pub located: Located<()>,
    /// Whom profiling leaves out, when the pipeline says (`profiling:`).
    pub profiling: Option<ProfilingPlan>,
    /// The fewest citizens a profile or a migration cell may count:
    /// smaller ones are suppressed.
    pub min_cell: usize,
}

/// Whom the segment step leaves out, and on what legal basis it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilingPlan {
    /// The legal basis.
    pub basis: LegalBasis,
    /// The table holding the flags, one row per citizen.
    pub table: String,
    /// Its column matching the segment step's `id`.
    pub id: String,
    /// True for citizens who consented (with `basis: consent`).
    pub consent: Option<String>,
    /// True for citizens who objected.
    pub objection: Option<String>,
    /// The law giving the task, with `public_interest`, when named.
    pub law: Option<String>,
    /// Where `profiling` is written.
    pub located: Located<()>,
}

impl ProfilingPlan {
    /// The condition, in SQL, that a row of the segment step's input (as
    /// `alias`, its id column `id`) is kept: no objection, and consent
    /// where the basis is consent. A null flag is no consent, and no
    /// objection.
    pub fn keeps(&self, alias: &str, id: &str) -> String {
        let quote = crate::sql::quote_ident;
        let flagged = |flag: &str| {
            format!(
                "EXISTS (SELECT 1 FROM {} AS civica_flags WHERE civica_flags.{} = {alias}.{} AND civica_flags.{} IS TRUE)",
                quote(&self.table),
                quote(&self.id),
                quote(id),
                quote(flag)
            )
        };
        let mut kept = Vec::new();
        if let Some(objection) = &self.objection {
            kept.push(format!("NOT {}", flagged(objection)));
        }
        if let (LegalBasis::Consent, Some(consent)) = (self.basis, &self.consent) {
            kept.push(flagged(consent));
        }
        match kept.is_empty() {
            true => "TRUE".to_string(),
            false => kept.join(" AND "),
        }
    }
}

/// Checked model settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// k-means (with its precision) or a Gaussian mixture.
    pub kind: ModelKind,
    /// The number of segments, or the range `auto` chooses from.
    pub k: KPlan,
    /// Random seed.
    pub seed: u64,
    /// Initialisations, at least 1.
    pub n_init: usize,
    /// Iteration cap, at least 1.
    pub max_iter: usize,
    /// Convergence tolerance, positive.
    pub tolerance: f64,
    /// Refit or assign to the saved model.
    pub mode: ModelMode,
    /// Initial centroids (k-means only), k × features, scaled units.
    pub init: Option<Vec<Vec<f64>>>,
}

/// The kind of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// k-means at this precision.
    Kmeans(Precision),
    /// Gaussian mixture (f64).
    Gmm,
}

/// The number of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KPlan {
    /// Exactly this many, at least 2.
    Fixed(usize),
    /// Chosen by silhouette between these, inclusive.
    Auto(usize, usize),
}

impl KPlan {
    /// The smallest number of segments the step may produce.
    pub fn min(&self) -> usize {
        match *self {
            KPlan::Fixed(k) | KPlan::Auto(k, _) => k,
        }
    }

    /// The values of k to fit.
    pub fn candidates(&self) -> Vec<usize> {
        match *self {
            KPlan::Fixed(k) => vec![k],
            KPlan::Auto(min, max) => (min..=max).collect(),
        }
    }
}

fn segment_plan(
    file: &str,
    seg: &Located<SegmentSpec>,
    diags: &mut Vec<Diagnostic>,
) -> SegmentPlan {
    let spec = &seg.value;
    let model = model_plan(file, seg, diags);
    if spec.features.is_empty() {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("features"),
            "`features` lists no columns",
        ));
    }
    let mut seen = BTreeSet::new();
    for (idx, feature) in spec.features.iter().enumerate() {
        if !seen.insert(feature) {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&format!("features[{idx}]")),
                format!("feature `{feature}` is listed twice"),
            ));
        }
    }
    // `log1p` and `feature_names` may only name listed features.
    let named = spec
        .log1p
        .iter()
        .enumerate()
        .map(|(idx, name)| ("log1p", format!("log1p[{idx}]"), name))
        .chain(
            spec.feature_names
                .keys()
                .map(|name| ("feature_names", format!("feature_names.{name}"), name)),
        );
    for (what, key, name) in named {
        if !spec.features.contains(name) {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&key),
                format!(
                    "`{what}` names `{name}`, which is not in `features` ({})",
                    backticked(&spec.features)
                ),
            ));
        }
    }
    // The plan is kept even with bad parameters, so that its columns are
    // still checked against the data; the problems above stop any run.
    SegmentPlan {
        name: spec.name.clone(),
        profiles: spec.profiles.clone(),
        quality: spec.quality.clone(),
        migrations: spec.migrations.clone(),
        from: spec.from.clone(),
        id: spec.id.clone(),
        features: spec.features.clone(),
        impute: spec.impute,
        log1p: spec
            .features
            .iter()
            .map(|f| spec.log1p.contains(f))
            .collect(),
        scaling: spec.scaling,
        feature_names: spec
            .features
            .iter()
            .map(|f| {
                spec.feature_names.get(f).cloned().unwrap_or_else(|| {
                    let plain = f.replace('_', " ");
                    FeatureName {
                        it: plain.clone(),
                        en: plain,
                    }
                })
            })
            .collect(),
        model,
        model_path: None,
        published: None,
        located: Located {
            value: (),
            pos: seg.pos,
            fields: seg.fields.clone(),
        },
        profiling: None,
        min_cell: DEFAULT_MIN_CELL,
    }
}

/// `min_cell` when the pipeline does not say: ISTAT's usual threshold for
/// tables of people.
pub const DEFAULT_MIN_CELL: usize = 10;

/// The least `min_cell` accepted: the Sistan minimum of 3.
pub const LEAST_MIN_CELL: usize = 3;

/// Checks `min_cell`: at least [`LEAST_MIN_CELL`].
pub(super) fn min_cell(file: &str, spec: &PipelineSpec, diags: &mut Vec<Diagnostic>) -> usize {
    let Some(cells) = &spec.min_cell else {
        return DEFAULT_MIN_CELL;
    };
    let value = usize::try_from(cells.value).unwrap_or(usize::MAX);
    if value < LEAST_MIN_CELL {
        diags.push(Diagnostic::at(
            file,
            cells.pos,
            format!(
                "`min_cell` must be at least {LEAST_MIN_CELL} (the Sistan minimum: fewer citizens in a cell can be singled out), found {value}"
            ),
        ));
        return LEAST_MIN_CELL;
    }
    value
}

/// Checks `segment.model`; bad values are reported and replaced by the
/// nearest valid ones so the rest of the step can still be checked.
fn model_plan(file: &str, seg: &Located<SegmentSpec>, diags: &mut Vec<Diagnostic>) -> ModelPlan {
    let model = &seg.value.model;
    let kind = match model.kind {
        ModelType::Kmeans => ModelKind::Kmeans(model.precision.unwrap_or_default()),
        ModelType::Gmm => {
            for (key, set) in [
                ("precision", model.precision.is_some()),
                ("init", model.init.is_some()),
            ] {
                if set {
                    diags.push(Diagnostic::at(
                        file,
                        seg.pos_of(&format!("model.{key}")),
                        format!("`{key}` is read by `type: kmeans` only"),
                    ));
                }
            }
            ModelKind::Gmm
        }
    };
    let init = model
        .init
        .clone()
        .filter(|_| model.kind == ModelType::Kmeans);
    let (k, k_range, seed, n_init, max_iter, tolerance, mode) = (
        model.k,
        &model.k_range,
        model.seed,
        model.n_init,
        model.max_iter,
        model.tolerance,
        model.mode,
    );
    let at_least = |key: &str, value: i64, min: i64, diags: &mut Vec<Diagnostic>| {
        if value < min {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&format!("model.{key}")),
                format!("`{key}` must be at least {min}, found {value}"),
            ));
        }
        usize::try_from(value.max(min)).unwrap_or(usize::MAX)
    };
    let k = match (k, k_range) {
        (KChoice::Fixed(k), None) => KPlan::Fixed(at_least("k", k, 2, diags)),
        (KChoice::Fixed(_), Some(_)) => {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of("model.k_range"),
                "`k_range` is only read with `k: auto`",
            ));
            KPlan::Fixed(2)
        }
        (KChoice::Auto, None) => KPlan::Auto(2, 8),
        (KChoice::Auto, Some(range)) => match range[..] {
            [min, max] if min >= 2 && max >= min => KPlan::Auto(min as usize, max as usize),
            _ => {
                diags.push(Diagnostic::at(
                    file,
                    seg.pos_of("model.k_range"),
                    format!("`k_range` must be `[min, max]` with 2 <= min <= max, found {range:?}"),
                ));
                KPlan::Auto(2, 2)
            }
        },
    };
    let n_init = at_least("n_init", n_init, 1, diags);
    let max_iter = at_least("max_iter", max_iter, 1, diags);
    if !(tolerance > 0.0 && tolerance.is_finite()) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.tolerance"),
            format!("`tolerance` must be a positive number, found {tolerance}"),
        ));
    }
    if let Some(init) = &init {
        let width = seg.value.features.len();
        let fits = matches!(k, KPlan::Fixed(k) if k == init.len())
            && init.iter().all(|row| row.len() == width);
        if !fits {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of("model.init"),
                format!(
                    "`init` must hold `k` centroids of {width} value(s) each (one per feature), with a fixed `k`"
                ),
            ));
        }
    }
    if mode == ModelMode::Assign && !matches!(kind, ModelKind::Kmeans(_)) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            "`mode: assign` is available for `type: kmeans` only",
        ));
    }
    if mode == ModelMode::Assign && matches!(k, KPlan::Auto(..)) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            "`mode: assign` reuses the saved model's segments; it cannot take `k: auto`",
        ));
    }
    ModelPlan {
        kind,
        k,
        seed,
        n_init,
        max_iter,
        tolerance,
        mode,
        init,
    }
}

/// Where the segment model is kept: `model_path` as written, else
/// `<name>_model.json` beside the `segments` output's folder.
pub(super) fn resolve_model_path(
    file: &str,
    spec: &PipelineSpec,
    plan: &mut Plan,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(seg) = &spec.segment else { return };
    let published = plan
        .outputs
        .iter()
        .find(|o| o.table == seg.value.name)
        .map(|o| o.location.clone());
    let path = match &seg.value.model_path {
        Some(path) => {
            let pos = seg.pos_of("model_path");
            render_located(file, path, pos, &plan.vars, diags)
                .map(|location| resolve_location(&location, base_dir, false))
        }
        None => published.as_ref().map(|folder| {
            let folder = folder.trim_end_matches('/');
            let parent = folder.rsplit_once('/').map_or("", |(parent, _)| parent);
            format!("{parent}/{}_model.json", seg.value.name)
        }),
    };
    if path.is_none() && seg.value.model.mode == ModelMode::Assign {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            format!(
                "`mode: assign` needs a saved model: set `model_path` or write `{}` as an output",
                seg.value.name
            ),
        ));
    }
    for step in &mut plan.steps {
        if let Step::Segment(s) = step {
            s.model_path = path.clone();
            s.published = published.clone();
        }
    }
}

/// The segment step, when the pipeline has one and its four table names
/// are free.
pub(super) fn plan_segment(
    file: &str,
    spec: &PipelineSpec,
    tables: &mut Tables,
    diags: &mut Vec<Diagnostic>,
) -> Option<SegmentPlan> {
    let Some(seg) = spec.segment.as_ref() else {
        if let Some(profiling) = &spec.profiling {
            diags.push(Diagnostic::at(
                file,
                profiling.pos,
                "`profiling` says whom the segment step leaves out, and the pipeline has no `segment`",
            ));
        }
        return None;
    };
    let ok_name = tables.claim(&seg.value.name, seg.pos_of("name"), diags);
    let ok_profiles = tables.claim(&seg.value.profiles, seg.pos_of("profiles"), diags);
    let ok_quality = tables.claim(&seg.value.quality, seg.pos_of("quality"), diags);
    let ok_migrations = tables.claim(&seg.value.migrations, seg.pos_of("migrations"), diags);
    let mut plan = segment_plan(file, seg, diags);
    plan.profiling = spec
        .profiling
        .as_ref()
        .map(|profiling| profiling_plan(file, profiling, &seg.value.id, diags));
    (ok_name && ok_profiles && ok_quality && ok_migrations).then_some(plan)
}

/// Checks `profiling`: each basis needs its column.
fn profiling_plan(
    file: &str,
    profiling: &Located<ProfilingSpec>,
    segment_id: &str,
    diags: &mut Vec<Diagnostic>,
) -> ProfilingPlan {
    let spec = &profiling.value;
    let needed = match spec.basis {
        LegalBasis::Consent if spec.consent.is_none() => Some(
            "`basis: consent` leaves out everyone who did not consent: name the `consent` column",
        ),
        LegalBasis::PublicInterest if spec.objection.is_none() => Some(
            "`basis: public_interest` must honour objections (GDPR art. 21): name the `objection` column",
        ),
        _ => None,
    };
    if let Some(message) = needed {
        diags.push(Diagnostic::at(
            file,
            profiling.pos_of("basis"),
            format!("in `profiling`: {message}"),
        ));
    }
    ProfilingPlan {
        basis: spec.basis,
        table: spec.table.clone(),
        id: spec.id.clone().unwrap_or_else(|| segment_id.to_string()),
        consent: spec.consent.clone(),
        objection: spec.objection.clone(),
        law: spec.law.clone(),
        located: Located {
            value: (),
            pos: profiling.pos,
            fields: profiling.fields.clone(),
        },
    }
}
