//! The built-in `anilist` provider: series from AniList's public GraphQL API, by AniList media
//! ID, read into the Codex `metadata/series/get` shape. It owns the queries and the reading of
//! their answers; transport, credentials and the HTTP error mapping are `http`'s.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{self, Answer, Call, HttpClient, Secret};
use super::{Capabilities, EntityKind, MatchCandidate, MatchQuery, Metadata, ProviderError};
use super::{best_candidate, normalise_title};
use crate::config::ProviderConfig;

/// The public API; `baseUrl` replaces it.
pub const DEFAULT_BASE_URL: &str = "https://graphql.anilist.co";

/// AniList knows series (its `MANGA` media: manga, manhwa, manhua, novels, one-shots).
pub const CAPABILITIES: Capabilities = Capabilities { series: true, book: false };

/// The credentials the provider reads: an optional OAuth access token, sent as
/// `Authorization: Bearer`, which lets AniList answer for the token's user (adult entries).
pub const CREDENTIALS: &[&str] = &["token"];

/// How many search results the match call weighs.
const MATCH_CANDIDATES: u32 = 10;

const MEDIA_QUERY: &str = "query ($id: Int) {
  Media(id: $id, type: MANGA) {
    id idMal siteUrl
    title { romaji english native }
    synonyms
    description(asHtml: false)
    status(version: 2)
    startDate { year }
    volumes chapters
    genres
    tags { name rank isMediaSpoiler isGeneralSpoiler }
    averageScore meanScore
    stats { scoreDistribution { score amount } }
    coverImage { extraLarge large medium }
    bannerImage
    countryOfOrigin
    isAdult
    staff(perPage: 25, sort: [RELEVANCE, ID]) { edges { role node { name { full } } } }
    externalLinks { url site type }
  }
}";

const SEARCH_QUERY: &str = "query ($search: String, $perPage: Int) {
  Page(page: 1, perPage: $perPage) {
    media(search: $search, type: MANGA, sort: SEARCH_MATCH) {
      id
      title { romaji english native }
      synonyms
      startDate { year }
    }
  }
}";

/// Which of AniList's titles becomes `title`; the others become `alternateTitles`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TitleLanguage {
    /// The official English title, the romaji one when there is none.
    #[default]
    English,
    Romaji,
    Native,
}

/// The provider's `settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub title_language: TitleLanguage,
}

pub struct AnilistProvider {
    http: HttpClient,
    token: Option<Secret>,
    settings: Settings,
}

impl AnilistProvider {
    /// Reads the credentials and settings and builds the client; sends nothing.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let mut secrets = http::read_credentials(&config.name, &config.credentials, CREDENTIALS)?;
        let token = secrets.remove("token");
        let settings = http::read_settings(config)?;
        let http = HttpClient::new(config, DEFAULT_BASE_URL, token.iter().cloned().collect())?;
        Ok(AnilistProvider { http, token, settings })
    }

    pub fn name(&self) -> &str {
        self.http.provider()
    }

    /// The series with AniList media ID `external_id`.
    pub async fn get(
        &self,
        kind: EntityKind,
        external_id: &str,
    ) -> Result<Metadata, ProviderError> {
        CAPABILITIES.require(self.name(), kind)?;
        let not_found = || self.http.not_found(kind, external_id);
        let id: u64 = external_id.trim().parse().map_err(|_| not_found())?;
        let data = self.query(MEDIA_QUERY, json!({ "id": id })).await?;
        match data.as_ref().and_then(|d| d.get("Media")).filter(|m| m.is_object()) {
            Some(media) => Ok(series_metadata(media, self.settings.title_language)),
            None => Err(not_found()),
        }
    }

    /// AniList's best candidate for a series without an AniList ID, found by searching its
    /// manga for the title. Each of the first ten results is scored:
    ///
    /// - title: 1 when the query's title equals the result's romaji, English or native title
    ///   once case, punctuation and spacing are ignored; 0.9 when it equals one of its
    ///   synonyms; otherwise 0.7 times the closest normalised edit similarity to any of them,
    ///   so an inexact title stays below 0.7;
    /// - times the year agreement: 1 for the same start year, 0.9 when either year is unknown,
    ///   0.8 a year apart (serialisation and first volume often straddle a new year), 0.5
    ///   otherwise;
    /// - times 0.9 when another result scores as high: the title alone cannot tell them apart.
    ///
    /// The highest score wins, the lowest AniList ID among equals. With the default threshold
    /// (0.8), an exact title attaches unless the years are more than one apart or another
    /// series shares the title and year; authors are not compared, as AniList's search does
    /// not take them.
    pub async fn match_entry(
        &self,
        kind: EntityKind,
        query: &MatchQuery,
    ) -> Result<Option<MatchCandidate>, ProviderError> {
        CAPABILITIES.require(self.name(), kind)?;
        if normalise_title(&query.title).is_empty() {
            return Ok(None);
        }
        let variables = json!({ "search": query.title, "perPage": MATCH_CANDIDATES });
        let data = self.query(SEARCH_QUERY, variables).await?;
        let results = data
            .as_ref()
            .and_then(|d| d.pointer("/Page/media"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut scored: Vec<(u64, MatchCandidate)> = results
            .iter()
            .filter_map(|media| {
                let id = media.get("id").and_then(Value::as_u64)?;
                let confidence = match_confidence(query, media);
                let title = main_title(media, self.settings.title_language)?;
                Some((id, MatchCandidate { external_id: id.to_string(), title, confidence }))
            })
            .collect();
        scored.sort_by_key(|(id, _)| *id);
        let best = best_candidate(scored.into_iter().map(|(_, c)| c).collect());
        Ok(best)
    }

    /// Posts one GraphQL query and returns its `data`, `None` when AniList answered that the
    /// media does not exist (HTTP 404, or a GraphQL error with status 404 and no data).
    async fn query(&self, query: &str, variables: Value) -> Result<Option<Value>, ProviderError> {
        let body = json!({ "query": query, "variables": variables });
        let mut call = Call::post_json("", &body);
        call.bearer = self.token.as_ref();
        let json = match self.http.send(call).await? {
            Answer::Found(json) => json,
            Answer::Missing(_) => return Ok(None),
        };
        let data = json.get("data").filter(|d| d.is_object());
        let has_media =
            data.is_some_and(|d| d.as_object().is_some_and(|m| m.values().any(|v| !v.is_null())));
        if has_media {
            return Ok(data.cloned());
        }
        match json.pointer("/errors/0") {
            None if data.is_some() => Ok(data.cloned()),
            None => Err(self.protocol("the answer has neither `data` nor `errors`".into())),
            Some(error) => self.graphql_error(error).map(|()| None),
        }
    }

    /// Reads a GraphQL error that came with HTTP 200, by the HTTP status AniList puts in it.
    fn graphql_error(&self, error: &Value) -> Result<(), ProviderError> {
        let status = error.get("status").and_then(Value::as_u64).unwrap_or(0);
        let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
        let message: String = self.http.redact(message).chars().take(200).collect();
        let provider = self.name().to_string();
        match status {
            404 => Ok(()),
            429 => {
                Err(ProviderError::RateLimited { provider, retry_after: http::DEFAULT_RETRY_AFTER })
            }
            500.. => Err(ProviderError::Unreachable {
                provider,
                reason: format!(
                    "`POST {}` answered a GraphQL error with status {status}: {message}",
                    self.http.base().path()
                ),
            }),
            _ => Err(ProviderError::Refused {
                provider,
                request: format!("POST {}", self.http.base().path()),
                status: if status == 0 { "200 OK".into() } else { status.to_string() },
                detail: Some(message),
            }),
        }
    }

    fn protocol(&self, reason: String) -> ProviderError {
        ProviderError::Protocol {
            provider: self.name().to_string(),
            method: format!("POST {}", self.http.base().path()),
            reason,
        }
    }
}

/// One AniList `Media` object in Codex's `metadata/series/get` field names.
pub fn series_metadata(media: &Value, preferred: TitleLanguage) -> Metadata {
    let mut out = Map::new();
    let text = |pointer: &str| {
        media.pointer(pointer).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    };
    let id = media.get("id").and_then(Value::as_u64).unwrap_or_default();
    let url = text("/siteUrl")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://anilist.co/manga/{id}"));
    out.insert("externalId".into(), json!(id.to_string()));
    out.insert("externalUrl".into(), json!(url));

    let country = text("/countryOfOrigin");
    let (title, alternates) = titles(media, preferred, country);
    if let Some(title) = title {
        out.insert("title".into(), json!(title));
    }
    if !alternates.is_empty() {
        out.insert("alternateTitles".into(), Value::Array(alternates));
    }
    if let Some(summary) = text("/description").map(plain_text).filter(|s| !s.is_empty()) {
        out.insert("summary".into(), json!(summary));
    }
    if let Some(status) = text("/status").map(status_word) {
        out.insert("status".into(), json!(status));
    }
    if let Some(year) = media.pointer("/startDate/year").and_then(Value::as_i64) {
        out.insert("year".into(), json!(year));
    }
    if let Some(volumes) = media.get("volumes").and_then(Value::as_i64) {
        out.insert("totalVolumeCount".into(), json!(volumes));
    }
    if let Some(chapters) = media.get("chapters").and_then(Value::as_f64) {
        out.insert("totalChapterCount".into(), json!(chapters));
    }
    let genres = strings(media.get("genres"));
    if !genres.is_empty() {
        out.insert("genres".into(), json!(genres));
    }
    let tags: Vec<&str> = media
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| !flag(t, "isMediaSpoiler") && !flag(t, "isGeneralSpoiler"))
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    if !tags.is_empty() {
        out.insert("tags".into(), json!(tags));
    }
    if let Some(rating) = rating(media) {
        out.insert("rating".into(), rating);
    }
    let cover = text("/coverImage/extraLarge")
        .or_else(|| text("/coverImage/large"))
        .or_else(|| text("/coverImage/medium"));
    if let Some(cover) = cover {
        out.insert("coverUrl".into(), json!(cover));
    }
    if let Some(banner) = text("/bannerImage") {
        out.insert("bannerUrl".into(), json!(banner));
    }
    if let Some(language) = country.and_then(|c| country_language(c).map(|(lang, _)| lang)) {
        out.insert("language".into(), json!(language));
    }
    if flag(media, "isAdult") {
        out.insert("ageRating".into(), json!(18));
    }
    let authors = authors(media);
    if !authors.is_empty() {
        out.insert("authors".into(), Value::Array(authors));
    }
    out.insert("externalLinks".into(), Value::Array(links(media, &url)));
    let mut ids = vec![json!({ "source": "api:anilist", "externalId": id.to_string() })];
    if let Some(mal) = media.get("idMal").and_then(Value::as_u64) {
        ids.push(json!({ "source": "api:myanimelist", "externalId": mal.to_string() }));
    }
    out.insert("externalIds".into(), Value::Array(ids));
    out
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    let items = value.and_then(Value::as_array).into_iter().flatten();
    items.filter_map(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// AniList's status words in Codex's vocabulary.
fn status_word(status: &str) -> &'static str {
    match status {
        "FINISHED" => "ended",
        "RELEASING" => "ongoing",
        "HIATUS" => "hiatus",
        "CANCELLED" => "abandoned",
        _ => "unknown",
    }
}

/// The language of a country of origin (ISO 3166-1) and the tag of its romanisation.
fn country_language(country: &str) -> Option<(&'static str, &'static str)> {
    match country {
        "JP" => Some(("ja", "ja-Latn")),
        "KR" => Some(("ko", "ko-Latn")),
        "CN" => Some(("zh", "zh-Latn")),
        "TW" => Some(("zh-TW", "zh-Latn")),
        _ => None,
    }
}

/// The title chosen by `preferred`, and every other distinct title and synonym as an
/// alternate, each with its language where AniList's field says it.
fn titles(
    media: &Value,
    preferred: TitleLanguage,
    country: Option<&str>,
) -> (Option<String>, Vec<Value>) {
    let (native_lang, romaji_lang) = match country.and_then(country_language) {
        Some((native, romaji)) => (Some(native), Some(romaji)),
        None => (None, None),
    };
    let get = |key: &str| title_of(media, key);
    let all = [
        ("english", get("english"), Some("en")),
        ("romaji", get("romaji"), romaji_lang),
        ("native", get("native"), native_lang),
    ];
    let chosen = main_title(media, preferred);
    let mut seen: Vec<String> = chosen.iter().map(|t| normalise_title(t)).collect();
    let mut alternates = Vec::new();
    for (kind, title, language) in all {
        let Some(title) = title else { continue };
        // Native titles differ from their romanisation only in script; compare them raw.
        let key = if kind == "native" { title.to_string() } else { normalise_title(title) };
        if seen.contains(&key) || chosen.as_deref() == Some(title) {
            continue;
        }
        seen.push(key);
        let mut entry = json!({ "title": title, "titleType": kind });
        if let Some(language) = language {
            entry["language"] = json!(language);
        }
        alternates.push(entry);
    }
    for synonym in strings(media.get("synonyms")) {
        let key = normalise_title(synonym);
        if key.is_empty() || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        alternates.push(json!({ "title": synonym, "titleType": "synonym" }));
    }
    (chosen, alternates)
}

/// One of a media's titles (`romaji`, `english`, `native`), when it has it.
fn title_of<'a>(media: &'a Value, key: &str) -> Option<&'a str> {
    let title = media.get("title")?.get(key)?.as_str()?.trim();
    (!title.is_empty()).then_some(title)
}

fn main_title(media: &Value, preferred: TitleLanguage) -> Option<String> {
    let order: &[&str] = match preferred {
        TitleLanguage::English => &["english", "romaji", "native"],
        TitleLanguage::Romaji => &["romaji", "english", "native"],
        TitleLanguage::Native => &["native", "romaji", "english"],
    };
    order.iter().find_map(|k| title_of(media, k)).map(str::to_owned)
}

/// `averageScore` (AniList's weighted mean, 0 to 100), or `meanScore` when there is none, with
/// the number of users' scores behind it from the score distribution.
fn rating(media: &Value) -> Option<Value> {
    let score = media
        .get("averageScore")
        .and_then(Value::as_f64)
        .or_else(|| media.get("meanScore").and_then(Value::as_f64))?;
    let mut rating = json!({ "score": score.clamp(0.0, 100.0), "source": "anilist" });
    let votes: Option<u64> =
        media.pointer("/stats/scoreDistribution").and_then(Value::as_array).map(|buckets| {
            buckets.iter().filter_map(|b| b.get("amount").and_then(Value::as_u64)).sum()
        });
    if let Some(votes) = votes.filter(|v| *v > 0) {
        rating["voteCount"] = json!(votes);
    }
    Some(rating)
}

/// The creators among the staff, by their AniList role: story and art (`author`), story or
/// original story (`writer`), art (`illustrator`). Translators, letterers and the like are
/// not a series' authors. A person is listed once, under the first role met.
fn authors(media: &Value) -> Vec<Value> {
    let edges = media.pointer("/staff/edges").and_then(Value::as_array).into_iter().flatten();
    let mut names: Vec<&str> = Vec::new();
    let mut authors = Vec::new();
    for edge in edges {
        let Some(name) = edge.pointer("/node/name/full").and_then(Value::as_str) else {
            continue;
        };
        let role = edge.get("role").and_then(Value::as_str).unwrap_or("");
        // Roles carry notes in brackets: "Story (eps 1-3)", "Art (English)".
        let role = role.split('(').next().unwrap_or("").trim();
        let codex_role = match role {
            "Story & Art" => "author",
            "Story" | "Original Story" | "Original Creator" => "writer",
            "Art" => "illustrator",
            _ => continue,
        };
        if names.contains(&name) {
            continue;
        }
        names.push(name);
        authors.push(json!({ "name": name, "role": codex_role }));
    }
    authors
}

/// The AniList page first, then MyAnimeList's, then AniList's own external links.
fn links(media: &Value, url: &str) -> Vec<Value> {
    let mut links = vec![json!({ "url": url, "label": "AniList", "linkType": "provider" })];
    if let Some(mal) = media.get("idMal").and_then(Value::as_u64) {
        let url = format!("https://myanimelist.net/manga/{mal}");
        links.push(json!({ "url": url, "label": "MyAnimeList", "linkType": "provider" }));
    }
    let external = media.get("externalLinks").and_then(Value::as_array).into_iter().flatten();
    for link in external {
        let (Some(url), Some(site)) =
            (link.get("url").and_then(Value::as_str), link.get("site").and_then(Value::as_str))
        else {
            continue;
        };
        // Codex keys links by label: the first of two links to one site wins.
        if links.iter().any(|l| l["label"] == site) {
            continue;
        }
        let kind = match link.get("type").and_then(Value::as_str) {
            Some("STREAMING") => "read",
            Some("SOCIAL") => "social",
            _ => "other",
        };
        links.push(json!({ "url": url, "label": site, "linkType": kind }));
    }
    links
}

/// AniList's description as plain text: line breaks kept, other tags dropped, the common
/// entities decoded, spoiler passages (`~!…!~`) removed.
pub fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(['<', '~']) {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with("~!") {
            rest = rest.find("!~").map_or("", |end| &rest[end + 2..]);
        } else if rest.starts_with('<') {
            let Some(end) = rest.find('>') else {
                // A lone `<` is text ("a < b"), not a tag.
                text.push('<');
                rest = &rest[1..];
                continue;
            };
            let tag = rest[1..end].trim().trim_start_matches('/').to_ascii_lowercase();
            let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
            if matches!(name, "br" | "p") {
                text.push('\n');
            }
            rest = &rest[end + 1..];
        } else {
            text.push('~');
            rest = &rest[1..];
        }
    }
    text.push_str(rest);
    let text = decode_entities(&text);
    // Tidy the line structure: no trailing spaces, at most one empty line in a row.
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(if line.trim().is_empty() { "" } else { line });
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "hellip" => Some('…'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The confidence that search result `media` is the series `query` describes; see
/// [`AnilistProvider::match_entry`] for the rule.
fn match_confidence(query: &MatchQuery, media: &Value) -> f64 {
    let wanted = normalise_title(&query.title);
    let main: Vec<String> = ["romaji", "english", "native"]
        .iter()
        .filter_map(|k| media.pointer(&format!("/title/{k}")).and_then(Value::as_str))
        .map(normalise_title)
        .filter(|t| !t.is_empty())
        .collect();
    let synonyms: Vec<String> =
        strings(media.get("synonyms")).into_iter().map(normalise_title).collect();
    let title_score = if main.contains(&wanted) {
        1.0
    } else if synonyms.contains(&wanted) {
        0.9
    } else {
        let closest = main
            .iter()
            .chain(&synonyms)
            .map(|t| strsim::normalized_levenshtein(t, &wanted))
            .fold(0.0, f64::max);
        0.7 * closest
    };
    let year = media.pointer("/startDate/year").and_then(Value::as_i64);
    title_score * year_agreement(query.year, year)
}

fn year_agreement(wanted: Option<i64>, found: Option<i64>) -> f64 {
    match (wanted, found) {
        (Some(a), Some(b)) if a == b => 1.0,
        (Some(a), Some(b)) if (a - b).abs() == 1 => 0.8,
        (Some(_), Some(_)) => 0.5,
        _ => 0.9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_lose_their_tags_entities_and_spoilers() {
        let html = "Ten years after<br><br>\n<i>the hero&#039;s</i> party &amp; friends.\
                    ~!She dies.!~ <br>\n<br>\n<br>\n(Source: Viz)";
        let expected = "Ten years after\n\nthe hero's party & friends.\n\n(Source: Viz)";
        assert_eq!(plain_text(html), expected);
        assert_eq!(plain_text("a < b &unknown; c"), "a < b &unknown; c");
    }

    #[test]
    fn status_words_follow_codex() {
        let words: Vec<_> = ["FINISHED", "RELEASING", "HIATUS", "CANCELLED", "NOT_YET_RELEASED"]
            .into_iter()
            .map(status_word)
            .collect();
        assert_eq!(words, ["ended", "ongoing", "hiatus", "abandoned", "unknown"]);
    }

    #[test]
    fn confidence_weighs_title_then_year() {
        let media = json!({
            "id": 1,
            "title": { "romaji": "Sousou no Frieren", "english": "Frieren: Beyond Journey's End" },
            "synonyms": ["Frieren at the Funeral"],
            "startDate": { "year": 2020 }
        });
        let query =
            |title: &str, year| MatchQuery { title: title.into(), year, ..Default::default() };
        assert_eq!(match_confidence(&query("sousou no frieren", Some(2020)), &media), 1.0);
        assert_eq!(match_confidence(&query("Sousou no Frieren", None), &media), 0.9);
        assert_eq!(match_confidence(&query("Sousou no Frieren", Some(2021)), &media), 0.8);
        assert_eq!(match_confidence(&query("Sousou no Frieren", Some(2010)), &media), 0.5);
        assert_eq!(match_confidence(&query("Frieren at the funeral", Some(2020)), &media), 0.9);
        let fuzzy = match_confidence(&query("Sousou no Frieren 2", Some(2020)), &media);
        assert!(fuzzy < 0.7 && fuzzy > 0.5, "{fuzzy}");
    }
}
