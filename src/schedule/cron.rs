//! What is wrong with a cron expression, said at the field that is wrong: the wrong number of
//! fields, a field out of its range, a nickname croner lacks, a date that never comes. Reading
//! an expression for scheduling is [`super::parse_cron`]'s job; both configure croner the same
//! way, and a test keeps them agreeing.

use chrono::Utc;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// One thing wrong (or surprising) in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronProblem {
    /// Where in the expression, in characters from its start.
    pub offset: usize,
    pub message: String,
}

/// The nicknames croner knows; `@reboot` and `@midnight` are other crons' inventions.
const NICKNAMES: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"];

/// A field's name and what it takes.
struct Field(&'static str, &'static str);

const SECONDS: Field = Field("seconds", "0-59");
const FIVE_FIELDS: [Field; 5] = [
    Field("minute", "0-59"),
    Field("hour", "0-23"),
    Field("day-of-month", "1-31, `L` or `W`"),
    Field("month", "1-12 or JAN-DEC"),
    Field("day-of-week", "0-7 (0 and 7 are Sunday), SUN-SAT, `L` or `#`"),
];

/// Checks an expression: `Ok` with warnings about surprising but valid meanings, or the error.
pub fn check(expr: &str) -> Result<Vec<CronProblem>, CronProblem> {
    let fields = split(expr);
    let Some(&(first_offset, first)) = fields.first() else {
        return Err(problem(
            0,
            "the expression is empty: write 5 fields (minute hour \
             day-of-month month day-of-week) or a nickname such as `@daily`",
        ));
    };
    if first.starts_with('@') {
        return check_nickname(expr, &fields).map(|()| Vec::new());
    }
    let names: Vec<&Field> = match fields.len() {
        5 => FIVE_FIELDS.iter().collect(),
        6 => std::iter::once(&SECONDS).chain(FIVE_FIELDS.iter()).collect(),
        7 => {
            let (offset, _) = fields[6];
            return Err(problem(
                offset,
                "a year field is not supported: write 5 fields, or 6 \
                 with a leading seconds field",
            ));
        }
        n => {
            let message = format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with a \
                 leading seconds field; found {n}"
            );
            return Err(problem(first_offset, &message));
        }
    };

    // croner reads `1,` as `1`; a dangling comma is more likely a value left out than meant.
    for (&(offset, text), field) in fields.iter().zip(&names) {
        if text.split(',').any(str::is_empty) {
            let message = format!("the {} field `{text}` has an empty list item", field.0);
            return Err(problem(offset, &message));
        }
    }
    let parser = parser();
    let cron = match parser.parse(expr) {
        Ok(cron) => cron,
        Err(e) => return Err(locate(&parser, &fields, &names, &e)),
    };
    let dom = fields[names.len() - 3];
    let month = fields[names.len() - 2];
    let dow = fields[names.len() - 1];
    let start = Utc::now().with_timezone(&chrono_tz::UTC);
    if cron.find_next_occurrence(&start, false).is_err() {
        let message = if is_any(dow.1) {
            format!(
                "`{}` never fires: no month it allows (`{}`) has the day `{}`",
                expr.trim(),
                month.1,
                dom.1
            )
        } else {
            format!("`{}` never fires: no date matches it", expr.trim())
        };
        return Err(problem(dom.0, &message));
    }

    let mut warnings = Vec::new();
    if !is_any(dom.1) && !is_any(dow.1) && !dow.1.contains(['#', 'L', 'l']) {
        warnings.push(problem(
            dow.0,
            &format!(
                "day-of-month `{}` and day-of-week `{}` are both set, so it fires on every day \
                 that matches either (Vixie cron); for \"the first Monday\" write `*` and \
                 `1#1`",
                dom.1, dow.1
            ),
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod list_tests {
    #[test]
    fn an_empty_list_item_is_refused_at_its_field() {
        let err = super::check("0 4 * * 1,").unwrap_err();
        assert_eq!(err.message, "the day-of-week field `1,` has an empty list item");
        assert_eq!(err.offset, 8);
    }
}

/// curator's croner configuration: seconds optional, no year field.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}

fn check_nickname(expr: &str, fields: &[(usize, &str)]) -> Result<(), CronProblem> {
    let (offset, word) = fields[0];
    if let Some(&(extra, _)) = fields.get(1) {
        return Err(problem(
            extra,
            &format!("a nickname stands alone: remove what follows `{word}`"),
        ));
    }
    if NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(word)) {
        return parser().parse(expr).map(|_| ()).map_err(|e| problem(offset, &reason(&e)));
    }
    let hint = if word.eq_ignore_ascii_case("@midnight") {
        "; `@midnight` is `@daily`".to_string()
    } else {
        crate::validate::suggest(word, NICKNAMES.iter().copied())
    };
    let message = format!(
        "`{word}` is not a nickname curator knows: use `@hourly`, `@daily`, `@weekly`, \
         `@monthly` or `@yearly` (also `@annually`){hint}"
    );
    Err(problem(offset, &message))
}

/// Finds the field croner objects to by trying each alone, the others made `*`.
fn locate(
    parser: &CronParser,
    fields: &[(usize, &str)],
    names: &[&Field],
    error: &CronError,
) -> CronProblem {
    for (i, &(offset, text)) in fields.iter().enumerate() {
        let probe: Vec<&str> =
            fields.iter().enumerate().map(|(j, f)| if i == j { f.1 } else { "*" }).collect();
        if let Err(e) = parser.parse(&probe.join(" ")) {
            let Field(name, takes) = names[i];
            let what = match reason(&e).as_str() {
                "number out of bounds" => "is out of range".to_string(),
                "step cannot be zero" => "has a step of zero".to_string(),
                "range out of bounds" => "is a range outside the field, or backwards".to_string(),
                other => format!("is not valid ({other})"),
            };
            return problem(offset, &format!("the {name} field `{text}` {what}: it takes {takes}"));
        }
    }
    problem(fields[0].0, &format!("the expression is not valid: {}", reason(error)))
}

/// croner's reason, as a lowercase phrase.
fn reason(error: &CronError) -> String {
    let text = match error {
        CronError::ComponentError(text) | CronError::InvalidPattern(text) => text.clone(),
        CronError::IllegalCharacters(_) => "a character cron does not know".to_string(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

/// The whitespace-separated fields with their offsets in characters.
fn split(expr: &str) -> Vec<(usize, &str)> {
    let mut fields = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (chars, (byte, c)) in expr.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((chars, byte)),
            (true, Some((offset, from))) => {
                fields.push((offset, &expr[from..byte]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((offset, from)) = start {
        fields.push((offset, &expr[from..]));
    }
    fields
}

fn problem(offset: usize, message: &str) -> CronProblem {
    CronProblem { offset, message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(expr: &str) -> (usize, String) {
        let e = check(expr).expect_err(expr);
        (e.offset, e.message)
    }

    #[test]
    fn a_date_that_never_comes_is_an_error_at_the_day_of_month() {
        assert_eq!(
            error("0 0 30 2 *"),
            (4, "`0 0 30 2 *` never fires: no month it allows (`2`) has the day `30`".into())
        );
        assert_eq!(error("0 0 0 31 4,6 *").0, 6, "with seconds, day-of-month is the 4th field");
        assert!(check("0 0 29 2 *").unwrap().is_empty(), "leap days come");
    }

    #[test]
    fn a_field_out_of_range_is_named_with_what_it_takes() {
        assert_eq!(
            error("0 4 * * 9"),
            (
                8,
                "the day-of-week field `9` is out of range: it takes 0-7 (0 and 7 are Sunday), \
                 SUN-SAT, `L` or `#`"
                    .into()
            )
        );
        assert_eq!(error("60 * * * *").1, "the minute field `60` is out of range: it takes 0-59");
        assert_eq!(
            error("*/0 * * * *").1,
            "the minute field `*/0` has a step of zero: it takes 0-59"
        );
        assert_eq!(
            error("0 0 0 * * 8").1.split(':').next(),
            Some("the day-of-week field `8` is out of range")
        );
        assert_eq!(error("0 4 * 13 *").0, 6);
    }

    #[test]
    fn the_field_count_is_checked_first() {
        assert_eq!(
            error("* * *").1,
            "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with a leading \
             seconds field; found 3"
        );
        assert_eq!(error("0 0 4 * * * 2027").0, 12);
        assert!(error("").1.starts_with("the expression is empty"));
    }

    #[test]
    fn nicknames_sunday_and_seconds_are_accepted() {
        for expr in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@DAILY"] {
            assert!(check(expr).is_ok(), "{expr}");
        }
        assert!(check("0 4 * * 7").is_ok() && check("0 4 * * SUN").is_ok());
        assert!(check("30 0 4 * * *").is_ok(), "a leading seconds field");
        assert_eq!(
            error("@midnight").1,
            "`@midnight` is not a nickname curator knows: use `@hourly`, `@daily`, `@weekly`, \
             `@monthly` or `@yearly` (also `@annually`); `@midnight` is `@daily`"
        );
        assert_eq!(
            error("@weekley").1,
            "`@weekley` is not a nickname curator knows: use `@hourly`, `@daily`, `@weekly`, \
             `@monthly` or `@yearly` (also `@annually`); did you mean `@weekly`?"
        );
        assert_eq!(error("@daily 4").0, 7);
    }

    #[test]
    fn both_day_fields_set_is_a_warning_about_vixie_semantics() {
        let warnings = check("0 0 1-7 * 1").unwrap();
        assert_eq!(warnings[0].offset, 10);
        assert!(warnings[0].message.contains("fires on every day that matches either"));
        assert!(check("0 0 * * 1#1").unwrap().is_empty());
    }

    #[test]
    fn check_agrees_with_the_scheduler() {
        for expr in ["0 4 * * *", "0 0 30 2 *", "0 4 * * 9", "@daily", "30 0 4 * * *", "* * *"] {
            assert_eq!(check(expr).is_ok(), super::super::parse_cron(expr).is_ok(), "{expr}");
        }
    }
}
