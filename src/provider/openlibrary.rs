//! The built-in `openlibrary` provider: books from Open Library's public JSON API, read into the
//! Codex `metadata/book/get` shape. It owns which documents are read (edition, work, authors)
//! and how; transport, credentials and the HTTP error mapping are `http`'s.
//!
//! A book's external ID is an ISBN (10 or 13 digits, hyphens allowed), an edition ID
//! (`OL7353617M`) or a work ID (`OL45804W`). One `get` reads the edition (`/isbn/{isbn}.json`,
//! which Open Library redirects to `/books/{id}.json`), then its first work for the description
//! and subjects, then at most [`MAX_AUTHORS`] authors: never more than seven requests.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{self, Answer, Call, HttpClient};
use super::{Capabilities, EntityKind, MatchCandidate, MatchQuery, Metadata, ProviderError};
use super::{best_candidate, isbn_digits, normalise_title};
use crate::config::ProviderConfig;

/// The public site; `baseUrl` replaces it.
pub const DEFAULT_BASE_URL: &str = "https://openlibrary.org";

/// The public cover store; the `coversUrl` setting replaces it.
pub const DEFAULT_COVERS_URL: &str = "https://covers.openlibrary.org";

/// Open Library knows books; it has no notion of a comic or manga series.
pub const CAPABILITIES: Capabilities = Capabilities { series: false, book: true };

/// The most authors read for one book; further authors are left out of `authors`.
pub const MAX_AUTHORS: usize = 5;

/// How many search results the match call weighs.
const MATCH_CANDIDATES: &str = "10";

/// The provider's `settings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The root of the cover store, for `coverUrl` (`{coversUrl}/b/id/{cover}-L.jpg`).
    #[serde(default = "covers_default")]
    pub covers_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { covers_url: covers_default() }
    }
}

fn covers_default() -> String {
    DEFAULT_COVERS_URL.to_string()
}

pub struct OpenLibraryProvider {
    http: HttpClient,
    settings: Settings,
}

/// What an external ID names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BookId {
    Isbn(String),
    Edition(String),
    Work(String),
}

impl BookId {
    fn parse(id: &str) -> Option<BookId> {
        let id = id.trim();
        let key = id.trim_start_matches("/books/").trim_start_matches("/works/");
        let is_olid = |suffix: char| {
            key.strip_prefix("OL")
                .and_then(|rest| rest.strip_suffix(suffix))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if is_olid('M') {
            return Some(BookId::Edition(key.to_string()));
        }
        if is_olid('W') {
            return Some(BookId::Work(key.to_string()));
        }
        let digits = isbn_digits(id);
        let separators_only = id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ');
        let valid = separators_only
            && match digits.len() {
                10 => {
                    digits[..9].bytes().all(|b| b.is_ascii_digit())
                        && digits.ends_with(|c: char| c.is_ascii_digit() || c == 'X')
                }
                13 => digits.bytes().all(|b| b.is_ascii_digit()),
                _ => false,
            };
        valid.then_some(BookId::Isbn(digits))
    }
}

impl OpenLibraryProvider {
    /// Reads the settings and builds the client; sends nothing. Open Library needs no
    /// credentials, so any configured one is refused as a likely mistake.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        http::read_credentials(&config.name, &config.credentials, &[])?;
        let settings = http::read_settings(config)?;
        let http = HttpClient::new(config, DEFAULT_BASE_URL, Vec::new())?;
        Ok(OpenLibraryProvider { http, settings })
    }

    pub fn name(&self) -> &str {
        self.http.provider()
    }

    /// The book with ISBN, edition ID or work ID `external_id`.
    pub async fn get(
        &self,
        kind: EntityKind,
        external_id: &str,
    ) -> Result<Metadata, ProviderError> {
        CAPABILITIES.require(self.name(), kind)?;
        let not_found = || self.http.not_found(kind, external_id);
        let id = BookId::parse(external_id).ok_or_else(not_found)?;
        let (edition, work) = match &id {
            BookId::Isbn(isbn) => (
                Some(self.document(&format!("isbn/{isbn}.json")).await?.ok_or_else(not_found)?),
                None,
            ),
            BookId::Edition(key) => (
                Some(self.document(&format!("books/{key}.json")).await?.ok_or_else(not_found)?),
                None,
            ),
            BookId::Work(key) => (
                None,
                Some(self.document(&format!("works/{key}.json")).await?.ok_or_else(not_found)?),
            ),
        };
        // An edition names its work; a work that has gone missing leaves the edition's fields.
        let work = match (work, edition.as_ref().and_then(|e| e.pointer("/works/0/key"))) {
            (Some(work), _) => Some(work),
            (None, Some(Value::String(key))) => match olid(key, 'W') {
                Some(key) => self.document(&format!("works/{key}.json")).await?,
                None => None,
            },
            (None, _) => None,
        };
        let mut authors = Vec::new();
        for key in author_keys(edition.as_ref(), work.as_ref()).into_iter().take(MAX_AUTHORS) {
            if let Some(author) = self.document(&format!("authors/{key}.json")).await?
                && let Some(name) = author.get("name").and_then(Value::as_str)
            {
                authors.push(name.trim().to_string());
            }
        }
        let requested_isbn = match &id {
            BookId::Isbn(isbn) => Some(isbn.as_str()),
            _ => None,
        };
        Ok(self.book_metadata(edition.as_ref(), work.as_ref(), &authors, requested_isbn))
    }

    /// Open Library's best candidate for a book without an ID for it:
    ///
    /// - by ISBN first: an edition with that ISBN is certain (1);
    /// - else a search by title and first author (`/search.json`), each of the first ten works
    ///   scored: title 1 when it equals the query's once case, punctuation and spacing are
    ///   ignored (with or without the subtitle), else 0.7 times the normalised edit similarity;
    ///   times 1 when an author matches (the same name words in any order, so `Dahl, Roald`
    ///   is `Roald Dahl`), 0.9 when the entry names no author, 0.6 when none matches; times
    ///   0.9 when the entry's year is neither the work's first year nor unknown (editions
    ///   reprint); times 0.95, since a search is never as sure as an ISBN; times 0.9 when
    ///   another work scores as high.
    ///
    /// With the default threshold (0.8), an exact title with a matching author attaches; an
    /// exact title without authors attaches only with a matching year and no rival. The ID
    /// attached is the work's cover edition, else its first edition, else the work.
    pub async fn match_entry(
        &self,
        kind: EntityKind,
        query: &MatchQuery,
    ) -> Result<Option<MatchCandidate>, ProviderError> {
        CAPABILITIES.require(self.name(), kind)?;
        if let Some(isbn) = query.isbn.as_deref().and_then(BookId::parse)
            && let BookId::Isbn(isbn) = isbn
            && let Some(edition) = self.document(&format!("isbn/{isbn}.json")).await?
        {
            let title = edition.get("title").and_then(Value::as_str).unwrap_or_default();
            return Ok(Some(MatchCandidate {
                external_id: isbn,
                title: title.to_string(),
                confidence: 1.0,
            }));
        }
        if normalise_title(&query.title).is_empty() {
            return Ok(None);
        }
        let mut params = vec![("title", query.title.as_str())];
        if let Some(author) = query.authors.first() {
            params.push(("author", author.as_str()));
        }
        let fields =
            "key,title,subtitle,author_name,first_publish_year,cover_edition_key,edition_key";
        params.extend([("fields", fields), ("limit", MATCH_CANDIDATES)]);
        let call = Call { query: &params, ..Call::get("search.json") };
        let docs = match self.http.send(call).await? {
            Answer::Found(json) => json.get("docs").and_then(Value::as_array).cloned(),
            Answer::Missing(_) => None,
        };
        let scored: Vec<MatchCandidate> = docs
            .unwrap_or_default()
            .iter()
            .filter_map(|doc| {
                let id = doc
                    .get("cover_edition_key")
                    .and_then(Value::as_str)
                    .or_else(|| doc.pointer("/edition_key/0").and_then(Value::as_str))
                    .or_else(|| {
                        doc.get("key").and_then(Value::as_str).and_then(|k| olid(k, 'W'))
                    })?;
                let title = doc.get("title").and_then(Value::as_str)?;
                Some(MatchCandidate {
                    external_id: id.to_string(),
                    title: title.to_string(),
                    confidence: search_confidence(query, doc),
                })
            })
            .collect();
        // Open Library's relevance order decides among equals.
        let best = best_candidate(scored);
        Ok(best)
    }

    /// One JSON document by its path; `None` when Open Library has no such document.
    async fn document(&self, path: &str) -> Result<Option<Value>, ProviderError> {
        match self.http.send(Call::get(path)).await? {
            Answer::Found(json) if json.is_object() => Ok(Some(json)),
            Answer::Found(_) => Err(ProviderError::Protocol {
                provider: self.name().to_string(),
                method: format!("GET {}{path}", self.http.base().path()),
                reason: "the answer is not a JSON object".into(),
            }),
            Answer::Missing(_) => Ok(None),
        }
    }

    /// The edition and work in Codex's `metadata/book/get` field names; the edition's own
    /// values win over the work's.
    fn book_metadata(
        &self,
        edition: Option<&Value>,
        work: Option<&Value>,
        authors: &[String],
        requested_isbn: Option<&str>,
    ) -> Metadata {
        let mut out = Map::new();
        let text = |doc: Option<&Value>, key: &str| {
            doc.and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let both = |key: &str| text(edition, key).or_else(|| text(work, key));

        let key = text(edition, "key").or_else(|| text(work, "key")).unwrap_or_default();
        let id = key.rsplit('/').next().unwrap_or_default().to_string();
        let external_id = requested_isbn.map(str::to_owned).unwrap_or(id);
        let url = format!("{}{}", self.http.base(), key.trim_start_matches('/'));
        out.insert("externalId".into(), json!(external_id));
        out.insert("externalUrl".into(), json!(url));

        if let Some(title) = both("title") {
            out.insert("title".into(), json!(title));
        }
        if let Some(subtitle) = both("subtitle") {
            out.insert("subtitle".into(), json!(subtitle));
        }
        let description = [edition, work]
            .into_iter()
            .flatten()
            .find_map(|doc| description(doc.get("description")?));
        if let Some(summary) = description {
            out.insert("summary".into(), json!(summary));
        }
        if !authors.is_empty() {
            let list: Vec<Value> =
                authors.iter().map(|a| json!({ "name": a, "role": "author" })).collect();
            out.insert("authors".into(), Value::Array(list));
        }
        if let Some(publisher) =
            edition.and_then(|e| e.pointer("/publishers/0")).and_then(Value::as_str)
        {
            out.insert("publisher".into(), json!(publisher.trim()));
        }
        if let Some(date) = text(edition, "publish_date") {
            let (release, year) = publish_date(&date);
            if let Some(release) = release {
                out.insert("releaseDate".into(), json!(release));
            }
            if let Some(year) = year {
                out.insert("year".into(), json!(year));
            }
        } else if let Some(year) = text(work, "first_publish_date").and_then(|d| publish_date(&d).1)
        {
            out.insert("year".into(), json!(year));
        }
        if let Some(year) = text(work, "first_publish_date").and_then(|d| publish_date(&d).1) {
            out.insert("originalYear".into(), json!(year));
        }
        if let Some(pages) = edition
            .and_then(|e| e.get("number_of_pages"))
            .and_then(Value::as_i64)
            .filter(|p| *p > 0)
        {
            out.insert("pageCount".into(), json!(pages));
        }
        let isbns: Vec<String> = ["isbn_13", "isbn_10"]
            .iter()
            .flat_map(|k| {
                edition.and_then(|e| e.get(*k)).and_then(Value::as_array).into_iter().flatten()
            })
            .filter_map(Value::as_str)
            .map(isbn_digits)
            .collect();
        let isbn = requested_isbn.map(str::to_owned).or_else(|| isbns.first().cloned());
        if let Some(isbn) = isbn {
            out.insert("isbn".into(), json!(isbn));
        }
        if !isbns.is_empty() {
            out.insert("isbns".into(), json!(isbns));
        }
        if let Some(language) = edition
            .and_then(|e| e.pointer("/languages/0/key"))
            .and_then(Value::as_str)
            .and_then(|k| marc_language(k.rsplit('/').next().unwrap_or_default()))
        {
            out.insert("language".into(), json!(language));
        }
        let subjects: Vec<&str> = work
            .and_then(|w| w.get("subjects"))
            .or_else(|| edition.and_then(|e| e.get("subjects")))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !subjects.is_empty() {
            out.insert("subjects".into(), json!(subjects));
        }
        let cover = [edition, work].into_iter().flatten().find_map(|doc| {
            doc.get("covers")?.as_array()?.iter().filter_map(Value::as_i64).find(|c| *c > 0)
        });
        if let Some(cover) = cover {
            let base = self.settings.covers_url.trim_end_matches('/');
            let sizes = [("S", "small"), ("M", "medium"), ("L", "large")];
            out.insert("coverUrl".into(), json!(format!("{base}/b/id/{cover}-L.jpg")));
            let covers: Vec<Value> = sizes
                .iter()
                .map(|(s, size)| {
                    let url = format!("{base}/b/id/{cover}-{s}.jpg");
                    json!({ "url": url, "size": size })
                })
                .collect();
            out.insert("covers".into(), Value::Array(covers));
        }
        out.insert(
            "externalLinks".into(),
            json!([{ "url": url, "label": "Open Library", "linkType": "provider" }]),
        );
        let mut ids = Vec::new();
        for doc in [edition, work].into_iter().flatten() {
            if let Some(key) = text(Some(doc), "key") {
                let id = key.rsplit('/').next().unwrap_or_default().to_string();
                ids.push(json!({ "source": "api:openlibrary", "externalId": id }));
            }
        }
        out.insert("externalIds".into(), Value::Array(ids));
        out
    }
}

/// An Open Library key's ID (`/works/OL45804W` -> `OL45804W`) when it has the wanted kind.
fn olid(key: &str, kind: char) -> Option<&str> {
    let id = key.rsplit('/').next()?;
    let digits = id.strip_prefix("OL")?.strip_suffix(kind)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The author IDs of the edition, or of the work when the edition names none.
fn author_keys(edition: Option<&Value>, work: Option<&Value>) -> Vec<String> {
    let from = |doc: Option<&Value>, pointer: &str| -> Vec<String> {
        let list = doc.and_then(|d| d.get("authors")).and_then(Value::as_array);
        list.into_iter()
            .flatten()
            .filter_map(|a| a.pointer(pointer).and_then(Value::as_str))
            .filter_map(|k| olid(k, 'A'))
            .map(str::to_owned)
            .collect()
    };
    let keys = from(edition, "/key");
    if keys.is_empty() { from(work, "/author/key") } else { keys }
}

/// A description is a string or a typed text (`{"type": "/type/text", "value": …}`).
fn description(value: &Value) -> Option<String> {
    let text = value.as_str().or_else(|| value.get("value").and_then(Value::as_str))?;
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// An edition's free-form `publish_date` as an ISO date, when it names a day, and its year.
/// Open Library keeps what the cataloguer typed: `October 1, 1988`, `1988-10-01`, `1 Oct
/// 1988`, `1988`, `c1988`, `Spring 2001`.
fn publish_date(raw: &str) -> (Option<String>, Option<i64>) {
    let cleaned = raw.trim().trim_end_matches('.').replace(',', " ");
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let formats = ["%Y-%m-%d", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%Y/%m/%d"];
    let date = formats.iter().find_map(|f| chrono::NaiveDate::parse_from_str(&cleaned, f).ok());
    if let Some(date) = date {
        use chrono::Datelike;
        return (Some(date.format("%Y-%m-%d").to_string()), Some(i64::from(date.year())));
    }
    let year = cleaned
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 4)
        .and_then(|y| y.parse::<i64>().ok())
        .filter(|y| (1000..=2999).contains(y));
    (None, year)
}

/// The BCP 47 tag of the MARC language codes Open Library uses most; others are left out.
fn marc_language(code: &str) -> Option<&'static str> {
    Some(match code {
        "eng" => "en",
        "fre" => "fr",
        "ger" => "de",
        "spa" => "es",
        "ita" => "it",
        "por" => "pt",
        "dut" => "nl",
        "rus" => "ru",
        "jpn" => "ja",
        "chi" => "zh",
        "kor" => "ko",
        "pol" => "pl",
        "swe" => "sv",
        _ => return None,
    })
}

/// The confidence that search result `doc` is the book `query` describes; see
/// [`OpenLibraryProvider::match_entry`] for the rule.
fn search_confidence(query: &MatchQuery, doc: &Value) -> f64 {
    let wanted = normalise_title(&query.title);
    let title = doc.get("title").and_then(Value::as_str).map(normalise_title).unwrap_or_default();
    let full = match doc.get("subtitle").and_then(Value::as_str) {
        Some(sub) => format!("{title} {}", normalise_title(sub)),
        None => title.clone(),
    };
    let title_score = if wanted == title || wanted == full {
        1.0
    } else {
        let closest = strsim::normalized_levenshtein(&title, &wanted)
            .max(strsim::normalized_levenshtein(&full, &wanted));
        0.7 * closest
    };
    let names = |s: &str| {
        let mut words: Vec<String> = normalise_title(s).split(' ').map(str::to_owned).collect();
        words.sort();
        words
    };
    let found: Vec<Vec<String>> = doc
        .get("author_name")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(names)
        .collect();
    let author_score = if query.authors.is_empty() {
        0.9
    } else if query.authors.iter().any(|a| found.contains(&names(a))) {
        1.0
    } else {
        0.6
    };
    let first_year = doc.get("first_publish_year").and_then(Value::as_i64);
    let year_score = match (query.year, first_year) {
        (Some(a), Some(b)) if a != b => 0.9,
        _ => 1.0,
    };
    title_score * author_score * year_score * 0.95
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_isbns_edition_ids_or_work_ids() {
        assert_eq!(BookId::parse("978-0-14-032872-1"), Some(BookId::Isbn("9780140328721".into())));
        assert_eq!(BookId::parse("014032872x"), Some(BookId::Isbn("014032872X".into())));
        assert_eq!(BookId::parse("OL7353617M"), Some(BookId::Edition("OL7353617M".into())));
        assert_eq!(BookId::parse("/works/OL45804W"), Some(BookId::Work("OL45804W".into())));
        assert_eq!(BookId::parse("../isbn/1"), None);
        assert_eq!(BookId::parse("97801403287"), None);
        assert_eq!(BookId::parse("OLM"), None);
    }

    #[test]
    fn publish_dates_become_iso_dates_when_they_name_a_day() {
        assert_eq!(publish_date("October 1, 1988"), (Some("1988-10-01".into()), Some(1988)));
        assert_eq!(publish_date("Oct 01, 1988"), (Some("1988-10-01".into()), Some(1988)));
        assert_eq!(publish_date("1 October 1988"), (Some("1988-10-01".into()), Some(1988)));
        assert_eq!(publish_date("2009-04-30"), (Some("2009-04-30".into()), Some(2009)));
        assert_eq!(publish_date("2009"), (None, Some(2009)));
        assert_eq!(publish_date("c1988."), (None, Some(1988)));
        assert_eq!(publish_date("Spring 2001"), (None, Some(2001)));
        assert_eq!(publish_date("unknown"), (None, None));
    }

    #[test]
    fn search_confidence_needs_title_and_author_for_a_confident_match() {
        let doc = json!({
            "title": "Fantastic Mr Fox", "author_name": ["Roald Dahl"], "first_publish_year": 1970
        });
        let query = |title: &str, authors: &[&str], year| MatchQuery {
            title: title.into(),
            authors: authors.iter().map(|a| a.to_string()).collect(),
            year,
            ..Default::default()
        };
        let sure = search_confidence(&query("Fantastic Mr. Fox", &["Dahl, Roald"], None), &doc);
        assert!((sure - 0.95).abs() < 1e-9, "{sure}");
        let no_author = search_confidence(&query("fantastic mr fox", &[], Some(1970)), &doc);
        assert!((no_author - 0.855).abs() < 1e-9, "{no_author}");
        let wrong_author =
            search_confidence(&query("Fantastic Mr Fox", &["Wes Anderson"], None), &doc);
        assert!(wrong_author < 0.6, "{wrong_author}");
    }
}
