//! Where things are: local paths made absolute, URLs kept, folders given
//! their trailing `/`, and the runs folder placed where every run finds it.

use std::path::Path;

use super::{Plan, vars::render_located};
use crate::pipeline::Diagnostic;
use crate::pipeline::PipelineSpec;
use crate::pipeline::display_path;
use crate::pipeline::template::render;

/// The part of a path template before its first run-dependent placeholder
/// (`{{ ds }}`, `{{ ds_nodash }}`, `{{ run_id }}`, with or without
/// filters), cut back to a folder: `{{ lake }}/daily/{{ ds }}/` →
/// `{{ lake }}/daily/`. `None` when no such placeholder is in the path.
fn stable_folder(template: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(open) = template[from..].find("{{").map(|i| i + from) {
        let inner = template[open + 2..].trim_start();
        let name: String = inner
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ["ds", "ds_nodash", "run_id"].contains(&name.as_str()) {
            let folder = template[..open]
                .rfind('/')
                .map_or("", |at| &template[..=at]);
            return Some(if folder.is_empty() { "./" } else { folder });
        }
        from = open + 2;
    }
    None
}

/// The folder holding a folder location (`…/marts/segments/` →
/// `…/marts/`), with its trailing `/`.
fn parent_folder(folder: &str) -> &str {
    let trimmed = folder.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => &folder[..=at],
        None => "",
    }
}

/// A URL stays as it is; a local path becomes absolute. Folders keep (or,
/// for outputs, get) their trailing `/`.
pub(super) fn resolve_location(location: &str, base_dir: &Path, folder: bool) -> String {
    let mut resolved = if location.contains("://") {
        location.to_string()
    } else {
        let path = Path::new(location);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        let mut text = display_path(&absolute);
        if location.ends_with('/') && !text.ends_with('/') {
            text.push('/');
        }
        text
    };
    if folder && !resolved.ends_with('/') {
        resolved.push('/');
    }
    resolved
}

/// The runs folder: `runs` as written, else `_runs/` beside the first
/// output's folder, in the part of its path every run shares.
pub(super) fn runs_folder(
    spec: &PipelineSpec,
    plan: &Plan,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match &spec.runs {
        Some(runs) => render_located(&plan.file, &runs.value, runs.pos, &plan.vars, diags)
            .map(|location| resolve_location(&location, base_dir, true)),
        None => plan.outputs.first().map(|first| {
            let template = spec
                .outputs
                .iter()
                .find(|o| o.value.table == first.table)
                .map(|o| o.value.path.as_str())
                .unwrap_or_default();
            match stable_folder(template) {
                // A dated folder: the runs folder sits in the part of the
                // path every run shares, so each run finds the same state.
                Some(stable) => {
                    let rendered = render(stable, &plan.vars)
                        .map(|r| r.text)
                        .unwrap_or_else(|_| stable.to_string());
                    format!("{}_runs/", resolve_location(&rendered, base_dir, true))
                }
                None => format!("{}_runs/", parent_folder(&first.location)),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::stable_folder;

    #[test]
    fn a_dated_output_path_keeps_its_runs_folder_in_the_shared_part() {
        assert_eq!(
            stable_folder("{{ lake }}/daily/{{ ds }}/calls/"),
            Some("{{ lake }}/daily/")
        );
        assert_eq!(
            stable_folder("out/day/ds={{ ds_nodash }}/"),
            Some("out/day/")
        );
        assert_eq!(stable_folder("out/{{ ds | add_days(-1) }}/"), Some("out/"));
        assert_eq!(stable_folder("{{ run_id }}/x/"), Some("./"));
        assert_eq!(stable_folder("{{ lake }}/marts/segments/"), None);
        assert_eq!(stable_folder("{{ dsn }}/x/"), None);
    }
}
