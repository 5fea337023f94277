//! `{{ name }}` placeholders: filling them from variables, and mapping positions in the result back to the text as written.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::yaml::Pos;

/// A problem with a placeholder, at a byte offset of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the placeholder in the template.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A template with its placeholders filled, and the way back to the original offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The filled-in text.
    pub text: String,
    /// The text as written, with its placeholders.
    pub template: String,
    /// Pairs of (offset in `text`, offset in the template) where a stretch of
    /// copied text starts; placeholders map to their own start.
    pieces: Vec<(usize, usize)>,
}

impl Rendered {
    /// The template offset that produced byte `offset` of the rendered text.
    pub fn source_offset(&self, offset: usize) -> usize {
        let idx = self
            .pieces
            .partition_point(|(rendered, _)| *rendered <= offset);
        match idx.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some((rendered, source)) => source + (offset - rendered),
            None => offset,
        }
    }
}

/// Fills every `{{ name }}` in `template` from `vars`. Reports every unknown
/// name and malformed placeholder.
pub fn render(
    template: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Rendered, Vec<TemplateError>> {
    let mut text = String::with_capacity(template.len());
    let mut pieces = vec![(0, 0)];
    let mut errors = Vec::new();
    let mut rest = 0;
    while let Some(found) = template[rest..].find("{{") {
        let start = rest + found;
        text.push_str(&template[rest..start]);
        let Some(close) = template[start + 2..].find("}}") else {
            errors.push(TemplateError {
                offset: start,
                message: "placeholder `{{` is never closed with `}}`".to_string(),
            });
            rest = template.len();
            break;
        };
        let end = start + 2 + close + 2;
        let mut parts = template[start + 2..end - 2].split('|');
        let name = parts.next().unwrap_or_default().trim();
        let is_identifier = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !is_identifier {
            errors.push(TemplateError {
                offset: start,
                message: format!(
                    "placeholder `{}` is not a variable name",
                    &template[start..end]
                ),
            });
        } else if let Some(value) = vars.get(name) {
            match parts.try_fold(value.clone(), |value, filter| apply_filter(filter, &value)) {
                Ok(value) => {
                    pieces.push((text.len(), start));
                    text.push_str(&value);
                }
                Err(message) => errors.push(TemplateError {
                    offset: start,
                    message: format!("placeholder `{}`: {message}", &template[start..end]),
                }),
            }
        } else {
            let known = vars
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(TemplateError {
                offset: start,
                message: format!("unknown variable `{name}` (known: {known})"),
            });
        }
        pieces.push((text.len(), end));
        rest = end;
    }
    text.push_str(&template[rest.min(template.len())..]);
    if errors.is_empty() {
        Ok(Rendered {
            text,
            template: template.to_string(),
            pieces,
        })
    } else {
        Err(errors)
    }
}

/// Applies one filter of a placeholder (`{{ ds | add_days(-7) }}`) to a
/// value. Filters: `add_days(n)` on a `YYYY-MM-DD` date, `nodash` to write
/// a date as `YYYYMMDD`.
fn apply_filter(filter: &str, value: &str) -> Result<String, String> {
    let filter = filter.trim();
    let date = || {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|_| format!("`{filter}` needs a date `YYYY-MM-DD`, got `{value}`"))
    };
    if filter == "nodash" {
        return Ok(date()?.format("%Y%m%d").to_string());
    }
    if let Some(argument) = filter
        .strip_prefix("add_days(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let days: i64 = argument.trim().parse().map_err(|_| {
            format!(
                "`add_days` takes a whole number of days, got `{}`",
                argument.trim()
            )
        })?;
        return date()?
            .checked_add_signed(chrono::Duration::days(days))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .ok_or_else(|| format!("`{filter}` leaves the calendar"));
    }
    Err(format!(
        "unknown filter `{filter}` (known: `add_days(n)`, `nodash`)"
    ))
}

/// The variables every pipeline has: `ds` (the run date, `YYYY-MM-DD`) and
/// `ds_nodash` (`YYYYMMDD`).
pub fn builtin_vars(ds: NaiveDate) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ds".to_string(), ds.format("%Y-%m-%d").to_string()),
        ("ds_nodash".to_string(), ds.format("%Y%m%d").to_string()),
    ])
}

/// The (line, column) of a byte offset, both from 1, columns in characters.
pub fn pos_of_offset(text: &str, offset: usize) -> Pos {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

/// The byte offset of a (line, column) position, both from 1, columns in characters.
pub fn offset_of_pos(text: &str, pos: Pos) -> usize {
    let mut offset = 0;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        if idx + 1 == pos.line as usize {
            let col_offset = line
                .char_indices()
                .nth(pos.col.saturating_sub(1) as usize)
                .map_or(line.len(), |(i, _)| i);
            return offset + col_offset;
        }
        offset += line.len();
    }
    text.len()
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("lake".to_string(), "/data/lake".to_string()),
            ("ds".to_string(), "2026-11-21".to_string()),
        ])
    }

    #[test]
    fn date_filters_shift_and_reformat_the_run_date() {
        let vars = builtin_vars(NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"));
        let got = render(
            "{{ ds | add_days(-7) }}/{{ds|add_days(1)|nodash}}/{{ ds }}",
            &vars,
        )
        .expect("renders");
        assert_eq!(got.text, "2026-02-23/20260303/2026-03-02");
        let errors = render(
            "x {{ ds | add_days(soon) }} {{ ds_nodash | add_days(1) }} {{ ds | upper }}",
            &vars,
        )
        .expect_err("bad filters");
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors[0].offset, 2);
        assert!(
            messages[0].contains("whole number of days, got `soon`"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("needs a date `YYYY-MM-DD`, got `20260302`"),
            "{messages:?}"
        );
        assert!(
            messages[2].contains("unknown filter `upper`"),
            "{messages:?}"
        );
    }

    #[test]
    fn fills_placeholders_with_and_without_spaces() {
        let out = render("{{ lake }}/raw/{{ds}}/", &vars()).expect("renders");
        assert_eq!(out.text, "/data/lake/raw/2026-11-21/");
    }

    #[test]
    fn reports_every_unknown_variable() {
        let errors = render("{{ a }} and {{ b }}", &vars()).expect_err("unknown");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].offset, 12);
        assert!(errors[0].message.contains("unknown variable `a`"));
    }

    #[test]
    fn rejects_unclosed_placeholder() {
        let errors = render("x {{ lake", &vars()).expect_err("unclosed");
        assert_eq!(errors[0].offset, 2);
    }

    #[test]
    fn maps_rendered_offsets_back_to_the_template() {
        let template = "WHERE d = '{{ ds }}' AND bad_col = 1";
        let out = render(template, &vars()).expect("renders");
        let rendered_at = out.text.find("bad_col").expect("present");
        assert_eq!(
            out.source_offset(rendered_at),
            template.find("bad_col").expect("present")
        );
    }

    #[test]
    fn converts_between_offsets_and_positions() {
        let text = "ab\ncdé\nf";
        let pos = pos_of_offset(text, text.find('f').expect("present"));
        assert_eq!(pos, Pos { line: 3, col: 1 });
        assert_eq!(offset_of_pos(text, Pos { line: 2, col: 3 }), 5);
    }
}
