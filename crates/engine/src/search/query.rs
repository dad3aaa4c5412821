//! The query language: free words (every word must match, in subject, from, to/cc/bcc, body
//! or attachments), quoted phrases, and filters:
//!
//! | filter | matches |
//! |---|---|
//! | `from:` `to:` `subject:` `folder:` `mailbox:` `attachment:` | words or a quoted phrase in that field (`to:` covers Cc and Bcc) |
//! | `has:attachment` | messages with attachments |
//! | `after:YYYY-MM-DD` | received on or after that day (UTC) |
//! | `before:YYYY-MM-DD` | received before that day (UTC) |
//!
//! Anything else is passed to tantivy's query parser (so `OR`, `-word` and `(…)` work too).

use std::ops::Bound;

use chrono::NaiveDate;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::{Index, Term};

use super::schema::Fields;
use crate::error::{Error, Result};

/// Splits on whitespace, keeping double-quoted runs (also after `field:`) together.
fn tokens(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn day_ms(value: &str, filter: &str) -> Result<i64> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        Error::invalid(format!(
            "{filter}: wants a date as YYYY-MM-DD, not {value:?}"
        ))
    })?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis())
}

/// Parses `query` into a tantivy query over `fields`.
pub fn parse(index: &Index, fields: &Fields, query: &str) -> Result<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut text = Vec::new();
    for token in tokens(query) {
        let lower = token.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("after:") {
            let from = day_ms(value, "after")?;
            clauses.push((
                Occur::Must,
                date_range(fields, Bound::Included(from), Bound::Unbounded),
            ));
        } else if let Some(value) = lower.strip_prefix("before:") {
            let to = day_ms(value, "before")?;
            clauses.push((
                Occur::Must,
                date_range(fields, Bound::Unbounded, Bound::Excluded(to)),
            ));
        } else if lower.starts_with("has:") {
            if lower != "has:attachment" && lower != "has:attachments" {
                return Err(Error::invalid(format!(
                    "unknown filter {token:?}: has: takes only \"attachment\""
                )));
            }
            text.push("has:attachment".to_owned());
        } else {
            text.push(token);
        }
    }
    let text = text.join(" ");
    if !text.trim().is_empty() {
        let mut parser = QueryParser::for_index(index, fields.default_fields());
        parser.set_conjunction_by_default();
        let (parsed, _errors) = parser.parse_query_lenient(&text);
        clauses.push((Occur::Must, parsed));
    }
    Ok(match clauses.len() {
        0 => Box::new(AllQuery),
        1 => clauses.pop().expect("one clause").1,
        _ => Box::new(BooleanQuery::new(clauses)),
    })
}

fn date_range(fields: &Fields, from: Bound<i64>, to: Bound<i64>) -> Box<dyn Query> {
    let term = |ms| Term::from_field_i64(fields.date, ms);
    let map = |b: Bound<i64>| match b {
        Bound::Included(v) => Bound::Included(term(v)),
        Bound::Excluded(v) => Bound::Excluded(term(v)),
        Bound::Unbounded => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(map(from), map(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_quoted_phrases() {
        assert_eq!(
            tokens(r#"  subject:"q3 plan"  from:ann  budget "a b" "#),
            vec![r#"subject:"q3 plan""#, "from:ann", "budget", r#""a b""#]
        );
    }

    #[test]
    fn dates_are_days_in_utc_and_bad_filters_say_why() {
        assert_eq!(day_ms("2024-10-01", "after").unwrap(), 1_727_740_800_000);
        let (schema, fields) = Fields::schema();
        let index = Index::create_in_ram(schema);
        let e = parse(&index, &fields, "before:yesterday").unwrap_err();
        assert!(e.message.contains("YYYY-MM-DD"), "{}", e.message);
        assert!(parse(&index, &fields, "has:pizza").is_err());
        assert!(parse(&index, &fields, "").is_ok());
        assert!(parse(&index, &fields, "from:ann (unbalanced").is_ok());
    }
}
