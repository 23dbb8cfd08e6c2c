//! The read-only pages, in one place: which paths they answer, and which
//! renderer answers each. Every one reads the store on a handler thread and
//! never writes; every HTML one is plain HTML (a GET form, links, no
//! script) with every value escaped ([`page::escape`]).
//!
//! | path | page |
//! |---|---|
//! | `/` | the status page ([`page`]) |
//! | `/runs/{id}` | one run: its actions, failures, problems, skips and conflicts with their reasons ([`run_page`]) |
//! | `/search?q=…` | a person's history across runs and flows ([`search`]) |
//! | `/metrics` | Prometheus text exposition ([`metrics`]) |

use jiff::Timestamp;

use super::auth::Session;
use super::{Shared, metrics, page, run_page, search};
use crate::store::RunId;

/// Longest search query taken; longer ones are cut (a name or an email is
/// far shorter).
pub(super) const MAX_QUERY: usize = 200;

/// A read-only page and what it needs from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View {
    Status,
    Run(RunId),
    Search(String),
    Metrics,
}

/// Whether `path` is one of the read-only pages (any method: others get
/// `405`).
pub(super) fn is_view(path: &str) -> bool {
    matches!(path, "/" | "/search" | "/metrics") || path.starts_with("/runs/")
}

/// The page `path` asks for; `None` for a run id that is not a number.
pub(super) fn parse(path: &str, query: Option<&str>) -> Option<View> {
    match path {
        "/" => Some(View::Status),
        "/metrics" => Some(View::Metrics),
        "/search" => Some(View::Search(search_query(query.unwrap_or("")))),
        p => p
            .strip_prefix("/runs/")
            .and_then(|id| id.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .map(|id| View::Run(RunId(id))),
    }
}

/// The `q` parameter of a form-encoded query, trimmed and cut to
/// [`MAX_QUERY`] characters.
fn search_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().chars().take(MAX_QUERY).collect())
        .unwrap_or_default()
}

/// The page's status code, content type and body.
pub(super) fn render(
    shared: &Shared,
    view: &View,
    session: Option<&Session>,
) -> (u16, &'static str, String) {
    const HTML: &str = "text/html; charset=utf-8";
    match view {
        View::Status => (200, HTML, page::render(shared, session)),
        View::Run(id) => {
            let (status, body) = run_page::render(shared, *id, session);
            (status, HTML, body)
        }
        View::Search(q) => (200, HTML, search::render(shared, q)),
        View::Metrics => match metrics::render(shared) {
            Ok(body) => (200, metrics::CONTENT_TYPE, body),
            Err(e) => (
                500,
                "text/plain; charset=utf-8",
                format!("the metrics could not be read: {e}\n"),
            ),
        },
    }
}

/// A stored time (RFC 3339, UTC) in the tenant's zone, with the zone's
/// abbreviation (`2026-06-10 14:05:09 CEST`); a value that is not a time
/// is shown as it is, marked, rather than hidden.
pub(super) fn local_time(shared: &Shared, stored: &str) -> String {
    match stored.parse::<Timestamp>() {
        Ok(t) => t
            .to_zoned(shared.cfg.timezone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => format!("{stored} (not a time)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_pages() {
        assert_eq!(parse("/", None), Some(View::Status));
        assert_eq!(parse("/runs/12", None), Some(View::Run(RunId(12))));
        assert_eq!(parse("/runs/x", None), None);
        assert_eq!(parse("/runs/-1", None), None);
        assert_eq!(parse("/metrics", Some("a=b")), Some(View::Metrics));
        assert!(is_view("/runs/x") && !is_view("/healthz"));
    }

    #[test]
    fn the_query_is_decoded_as_a_browser_encodes_a_form() {
        assert_eq!(
            parse("/search", Some("x=1&q=Nina+M%C3%BCller+")),
            Some(View::Search("Nina Müller".into()))
        );
        assert_eq!(parse("/search", None), Some(View::Search(String::new())));
        let long = format!("q={}", "a".repeat(500));
        assert_eq!(
            parse("/search", Some(&long)),
            Some(View::Search("a".repeat(MAX_QUERY)))
        );
    }
}
