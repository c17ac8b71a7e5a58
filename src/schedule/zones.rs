//! Time-zone names as people write them: a canonical IANA zone, a deprecated alias of one (a
//! warning naming the zone to write instead), or not a zone at all, such as the abbreviations
//! `PST` and `CEST` (an error, with the zone most likely meant). Resolving a name to a
//! [`Tz`] for scheduling is [`super::parse_zone`]'s job; this module only judges the name.

use std::str::FromStr;

use chrono_tz::Tz;

/// What a zone name turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneName {
    /// A zone under its current name, or `UTC` / `GMT`.
    Canonical(Tz),
    /// An old name tzdb keeps for compatibility: it works, but should be written as `canonical`.
    /// `advice` describes the zone when its old name suggests another (`EST` has no DST).
    Deprecated { zone: Tz, canonical: &'static str, advice: Option<&'static str> },
    /// Not a zone: why, and a zone to write instead when one is likely.
    Unknown { reason: String, suggestion: Option<String> },
}

/// Judges a time-zone name.
pub fn classify(name: &str) -> ZoneName {
    if let Ok(zone) = Tz::from_str(name) {
        // `UTC` and `GMT` are links in tzdb too, but nobody should be warned for writing them.
        if matches!(name, "UTC" | "GMT") {
            return ZoneName::Canonical(zone);
        }
        return match canonical_of(name) {
            Some(canonical) => {
                ZoneName::Deprecated { zone, canonical, advice: fixed_offset_advice(name) }
            }
            None => ZoneName::Canonical(zone),
        };
    }
    if name.trim().is_empty() {
        return ZoneName::Unknown { reason: "empty, not a zone".into(), suggestion: None };
    }
    if let Some(hours) = utc_offset(name) {
        // tzdb's fixed-offset zones count the other way: `Etc/GMT-2` is two hours ahead.
        let suggestion = match hours {
            0 => Some("Etc/UTC".to_string()),
            -12..=14 => Some(format!("Etc/GMT{:+}", -hours)),
            _ => None,
        };
        return ZoneName::Unknown { reason: "a UTC offset, not an IANA zone".into(), suggestion };
    }
    if let Some((_, zone)) = ABBREVIATIONS.iter().find(|(abbr, _)| abbr.eq_ignore_ascii_case(name))
    {
        return ZoneName::Unknown {
            reason: "a time-zone abbreviation, not an IANA zone".into(),
            suggestion: Some((*zone).to_string()),
        };
    }
    if (2..=5).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_uppercase()) {
        return ZoneName::Unknown {
            reason: "a time-zone abbreviation, not an IANA zone".into(),
            suggestion: None,
        };
    }
    ZoneName::Unknown { reason: "not an IANA time zone".into(), suggestion: nearest(name) }
}

/// The whole hours of an offset written as a zone (`UTC+2`, `GMT-05:00`, `+02:00`), or
/// `i32::MAX` for an offset that is not whole hours; `None` for anything else.
fn utc_offset(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (hours, minutes) = digits.split_once(':').unwrap_or(match digits.len() {
        3 | 4 => digits.split_at(digits.len() - 2),
        _ => (digits, "00"),
    });
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    Some(if minutes == "00" { sign * hours } else { i32::MAX })
}

/// What to write instead of a name that is not a zone, as the end of a sentence.
pub fn unknown_hint(reason: &str, suggestion: Option<&str>) -> String {
    if reason.contains("offset") {
        let fixed = suggestion.map_or(String::new(), |zone| {
            format!(", or `{zone}` for that offset all year round, with no daylight saving")
        });
        return format!(
            ": write the location whose clocks you mean, such as `Europe/Paris`{fixed}"
        );
    }
    match (suggestion, reason.contains("abbreviation")) {
        (Some(zone), true) => format!(": write a location such as `{zone}`"),
        (None, true) => ": write a location such as `Europe/Paris`".to_string(),
        (Some(zone), false) => format!("; did you mean `{zone}`?"),
        (None, false) => " (a name such as `Europe/Paris` or `UTC`)".to_string(),
    }
}

/// The current name of a deprecated alias.
pub fn canonical_of(name: &str) -> Option<&'static str> {
    LINKS.binary_search_by(|(link, _)| link.cmp(&name)).ok().map(|i| LINKS[i].1)
}

/// The old fixed-offset zones look like the US ones but never observe daylight saving.
fn fixed_offset_advice(name: &str) -> Option<&'static str> {
    match name {
        "EST" => Some("a fixed UTC-5 offset: for US Eastern time write `America/New_York`"),
        "MST" => Some("a fixed UTC-7 offset: for US Mountain time write `America/Denver`"),
        _ => None,
    }
}

/// The closest zone name to a misspelt one, by its current name.
fn nearest(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let length = lower.chars().count();
    let within = |zone: &str| (zone.len() / 4).max(2);
    let (distance, best) = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|zone| zone.name())
        // Lengths further apart than the distance allowed cannot match: skipping them keeps a
        // long value from costing a comparison of its whole length with every zone.
        .filter(|zone| length.abs_diff(zone.len()) <= within(zone))
        .map(|zone| (strsim::damerau_levenshtein(&lower, &zone.to_lowercase()), zone))
        .min_by_key(|(distance, _)| *distance)?;
    let close = distance <= within(best);
    close.then(|| canonical_of(best).unwrap_or(best).to_string())
}

/// Abbreviations people write for a zone, and the zone most of them mean.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("PT", "America/Los_Angeles"),
    ("MDT", "America/Denver"),
    ("MT", "America/Denver"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("CT", "America/Chicago"),
    ("EDT", "America/New_York"),
    ("ET", "America/New_York"),
    ("AKST", "America/Anchorage"),
    ("AKDT", "America/Anchorage"),
    ("BST", "Europe/London"),
    ("IST", "Asia/Kolkata"),
    ("CEST", "Europe/Paris"),
    ("EEST", "Europe/Athens"),
    ("WEST", "Europe/Lisbon"),
    ("MSK", "Europe/Moscow"),
    ("JST", "Asia/Tokyo"),
    ("KST", "Asia/Seoul"),
    ("HKT", "Asia/Hong_Kong"),
    ("SGT", "Asia/Singapore"),
    ("AEST", "Australia/Sydney"),
    ("AEDT", "Australia/Sydney"),
    ("ACST", "Australia/Adelaide"),
    ("AWST", "Australia/Perth"),
    ("NZST", "Pacific/Auckland"),
    ("NZDT", "Pacific/Auckland"),
];

/// tzdb's `backward` file (release 2025b, the one chrono-tz compiles in): each deprecated name
/// and its current zone, sorted by name.
const LINKS: &[(&str, &str)] = &[
    ("Africa/Accra", "Africa/Abidjan"),
    ("Africa/Addis_Ababa", "Africa/Nairobi"),
    ("Africa/Asmara", "Africa/Nairobi"),
    ("Africa/Asmera", "Africa/Nairobi"),
    ("Africa/Bamako", "Africa/Abidjan"),
    ("Africa/Bangui", "Africa/Lagos"),
    ("Africa/Banjul", "Africa/Abidjan"),
    ("Africa/Blantyre", "Africa/Maputo"),
    ("Africa/Brazzaville", "Africa/Lagos"),
    ("Africa/Bujumbura", "Africa/Maputo"),
    ("Africa/Conakry", "Africa/Abidjan"),
    ("Africa/Dakar", "Africa/Abidjan"),
    ("Africa/Dar_es_Salaam", "Africa/Nairobi"),
    ("Africa/Djibouti", "Africa/Nairobi"),
    ("Africa/Douala", "Africa/Lagos"),
    ("Africa/Freetown", "Africa/Abidjan"),
    ("Africa/Gaborone", "Africa/Maputo"),
    ("Africa/Harare", "Africa/Maputo"),
    ("Africa/Kampala", "Africa/Nairobi"),
    ("Africa/Kigali", "Africa/Maputo"),
    ("Africa/Kinshasa", "Africa/Lagos"),
    ("Africa/Libreville", "Africa/Lagos"),
    ("Africa/Lome", "Africa/Abidjan"),
    ("Africa/Luanda", "Africa/Lagos"),
    ("Africa/Lubumbashi", "Africa/Maputo"),
    ("Africa/Lusaka", "Africa/Maputo"),
    ("Africa/Malabo", "Africa/Lagos"),
    ("Africa/Maseru", "Africa/Johannesburg"),
    ("Africa/Mbabane", "Africa/Johannesburg"),
    ("Africa/Mogadishu", "Africa/Nairobi"),
    ("Africa/Niamey", "Africa/Lagos"),
    ("Africa/Nouakchott", "Africa/Abidjan"),
    ("Africa/Ouagadougou", "Africa/Abidjan"),
    ("Africa/Porto-Novo", "Africa/Lagos"),
    ("Africa/Timbuktu", "Africa/Abidjan"),
    ("America/Anguilla", "America/Puerto_Rico"),
    ("America/Antigua", "America/Puerto_Rico"),
    ("America/Argentina/ComodRivadavia", "America/Argentina/Catamarca"),
    ("America/Aruba", "America/Puerto_Rico"),
    ("America/Atikokan", "America/Panama"),
    ("America/Atka", "America/Adak"),
    ("America/Blanc-Sablon", "America/Puerto_Rico"),
    ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("America/Catamarca", "America/Argentina/Catamarca"),
    ("America/Cayman", "America/Panama"),
    ("America/Coral_Harbour", "America/Panama"),
    ("America/Cordoba", "America/Argentina/Cordoba"),
    ("America/Creston", "America/Phoenix"),
    ("America/Curacao", "America/Puerto_Rico"),
    ("America/Dominica", "America/Puerto_Rico"),
    ("America/Ensenada", "America/Tijuana"),
    ("America/Fort_Wayne", "America/Indiana/Indianapolis"),
    ("America/Godthab", "America/Nuuk"),
    ("America/Grenada", "America/Puerto_Rico"),
    ("America/Guadeloupe", "America/Puerto_Rico"),
    ("America/Indianapolis", "America/Indiana/Indianapolis"),
    ("America/Jujuy", "America/Argentina/Jujuy"),
    ("America/Knox_IN", "America/Indiana/Knox"),
    ("America/Kralendijk", "America/Puerto_Rico"),
    ("America/Louisville", "America/Kentucky/Louisville"),
    ("America/Lower_Princes", "America/Puerto_Rico"),
    ("America/Marigot", "America/Puerto_Rico"),
    ("America/Mendoza", "America/Argentina/Mendoza"),
    ("America/Montreal", "America/Toronto"),
    ("America/Montserrat", "America/Puerto_Rico"),
    ("America/Nassau", "America/Toronto"),
    ("America/Nipigon", "America/Toronto"),
    ("America/Pangnirtung", "America/Iqaluit"),
    ("America/Port_of_Spain", "America/Puerto_Rico"),
    ("America/Porto_Acre", "America/Rio_Branco"),
    ("America/Rainy_River", "America/Winnipeg"),
    ("America/Rosario", "America/Argentina/Cordoba"),
    ("America/Santa_Isabel", "America/Tijuana"),
    ("America/Shiprock", "America/Denver"),
    ("America/St_Barthelemy", "America/Puerto_Rico"),
    ("America/St_Kitts", "America/Puerto_Rico"),
    ("America/St_Lucia", "America/Puerto_Rico"),
    ("America/St_Thomas", "America/Puerto_Rico"),
    ("America/St_Vincent", "America/Puerto_Rico"),
    ("America/Thunder_Bay", "America/Toronto"),
    ("America/Tortola", "America/Puerto_Rico"),
    ("America/Virgin", "America/Puerto_Rico"),
    ("America/Yellowknife", "America/Edmonton"),
    ("Antarctica/DumontDUrville", "Pacific/Port_Moresby"),
    ("Antarctica/McMurdo", "Pacific/Auckland"),
    ("Antarctica/South_Pole", "Pacific/Auckland"),
    ("Antarctica/Syowa", "Asia/Riyadh"),
    ("Arctic/Longyearbyen", "Europe/Berlin"),
    ("Asia/Aden", "Asia/Riyadh"),
    ("Asia/Ashkhabad", "Asia/Ashgabat"),
    ("Asia/Bahrain", "Asia/Qatar"),
    ("Asia/Brunei", "Asia/Kuching"),
    ("Asia/Calcutta", "Asia/Kolkata"),
    ("Asia/Choibalsan", "Asia/Ulaanbaatar"),
    ("Asia/Chongqing", "Asia/Shanghai"),
    ("Asia/Chungking", "Asia/Shanghai"),
    ("Asia/Dacca", "Asia/Dhaka"),
    ("Asia/Harbin", "Asia/Shanghai"),
    ("Asia/Istanbul", "Europe/Istanbul"),
    ("Asia/Kashgar", "Asia/Urumqi"),
    ("Asia/Katmandu", "Asia/Kathmandu"),
    ("Asia/Kuala_Lumpur", "Asia/Singapore"),
    ("Asia/Kuwait", "Asia/Riyadh"),
    ("Asia/Macao", "Asia/Macau"),
    ("Asia/Muscat", "Asia/Dubai"),
    ("Asia/Phnom_Penh", "Asia/Bangkok"),
    ("Asia/Rangoon", "Asia/Yangon"),
    ("Asia/Saigon", "Asia/Ho_Chi_Minh"),
    ("Asia/Tel_Aviv", "Asia/Jerusalem"),
    ("Asia/Thimbu", "Asia/Thimphu"),
    ("Asia/Ujung_Pandang", "Asia/Makassar"),
    ("Asia/Ulan_Bator", "Asia/Ulaanbaatar"),
    ("Asia/Vientiane", "Asia/Bangkok"),
    ("Atlantic/Faeroe", "Atlantic/Faroe"),
    ("Atlantic/Jan_Mayen", "Europe/Berlin"),
    ("Atlantic/Reykjavik", "Africa/Abidjan"),
    ("Atlantic/St_Helena", "Africa/Abidjan"),
    ("Australia/ACT", "Australia/Sydney"),
    ("Australia/Canberra", "Australia/Sydney"),
    ("Australia/Currie", "Australia/Hobart"),
    ("Australia/LHI", "Australia/Lord_Howe"),
    ("Australia/NSW", "Australia/Sydney"),
    ("Australia/North", "Australia/Darwin"),
    ("Australia/Queensland", "Australia/Brisbane"),
    ("Australia/South", "Australia/Adelaide"),
    ("Australia/Tasmania", "Australia/Hobart"),
    ("Australia/Victoria", "Australia/Melbourne"),
    ("Australia/West", "Australia/Perth"),
    ("Australia/Yancowinna", "Australia/Broken_Hill"),
    ("Brazil/Acre", "America/Rio_Branco"),
    ("Brazil/DeNoronha", "America/Noronha"),
    ("Brazil/East", "America/Sao_Paulo"),
    ("Brazil/West", "America/Manaus"),
    ("CET", "Europe/Brussels"),
    ("CST6CDT", "America/Chicago"),
    ("Canada/Atlantic", "America/Halifax"),
    ("Canada/Central", "America/Winnipeg"),
    ("Canada/Eastern", "America/Toronto"),
    ("Canada/Mountain", "America/Edmonton"),
    ("Canada/Newfoundland", "America/St_Johns"),
    ("Canada/Pacific", "America/Vancouver"),
    ("Canada/Saskatchewan", "America/Regina"),
    ("Canada/Yukon", "America/Whitehorse"),
    ("Chile/Continental", "America/Santiago"),
    ("Chile/EasterIsland", "Pacific/Easter"),
    ("Cuba", "America/Havana"),
    ("EET", "Europe/Athens"),
    ("EST", "America/Panama"),
    ("EST5EDT", "America/New_York"),
    ("Egypt", "Africa/Cairo"),
    ("Eire", "Europe/Dublin"),
    ("Etc/GMT+0", "Etc/GMT"),
    ("Etc/GMT-0", "Etc/GMT"),
    ("Etc/GMT0", "Etc/GMT"),
    ("Etc/Greenwich", "Etc/GMT"),
    ("Etc/UCT", "Etc/UTC"),
    ("Etc/Universal", "Etc/UTC"),
    ("Etc/Zulu", "Etc/UTC"),
    ("Europe/Amsterdam", "Europe/Brussels"),
    ("Europe/Belfast", "Europe/London"),
    ("Europe/Bratislava", "Europe/Prague"),
    ("Europe/Busingen", "Europe/Zurich"),
    ("Europe/Copenhagen", "Europe/Berlin"),
    ("Europe/Guernsey", "Europe/London"),
    ("Europe/Isle_of_Man", "Europe/London"),
    ("Europe/Jersey", "Europe/London"),
    ("Europe/Kiev", "Europe/Kyiv"),
    ("Europe/Ljubljana", "Europe/Belgrade"),
    ("Europe/Luxembourg", "Europe/Brussels"),
    ("Europe/Mariehamn", "Europe/Helsinki"),
    ("Europe/Monaco", "Europe/Paris"),
    ("Europe/Nicosia", "Asia/Nicosia"),
    ("Europe/Oslo", "Europe/Berlin"),
    ("Europe/Podgorica", "Europe/Belgrade"),
    ("Europe/San_Marino", "Europe/Rome"),
    ("Europe/Sarajevo", "Europe/Belgrade"),
    ("Europe/Skopje", "Europe/Belgrade"),
    ("Europe/Stockholm", "Europe/Berlin"),
    ("Europe/Tiraspol", "Europe/Chisinau"),
    ("Europe/Uzhgorod", "Europe/Kyiv"),
    ("Europe/Vaduz", "Europe/Zurich"),
    ("Europe/Vatican", "Europe/Rome"),
    ("Europe/Zagreb", "Europe/Belgrade"),
    ("Europe/Zaporozhye", "Europe/Kyiv"),
    ("GB", "Europe/London"),
    ("GB-Eire", "Europe/London"),
    ("GMT+0", "Etc/GMT"),
    ("GMT-0", "Etc/GMT"),
    ("GMT0", "Etc/GMT"),
    ("Greenwich", "Etc/GMT"),
    ("HST", "Pacific/Honolulu"),
    ("Hongkong", "Asia/Hong_Kong"),
    ("Iceland", "Africa/Abidjan"),
    ("Indian/Antananarivo", "Africa/Nairobi"),
    ("Indian/Christmas", "Asia/Bangkok"),
    ("Indian/Cocos", "Asia/Yangon"),
    ("Indian/Comoro", "Africa/Nairobi"),
    ("Indian/Kerguelen", "Indian/Maldives"),
    ("Indian/Mahe", "Asia/Dubai"),
    ("Indian/Mayotte", "Africa/Nairobi"),
    ("Indian/Reunion", "Asia/Dubai"),
    ("Iran", "Asia/Tehran"),
    ("Israel", "Asia/Jerusalem"),
    ("Jamaica", "America/Jamaica"),
    ("Japan", "Asia/Tokyo"),
    ("Kwajalein", "Pacific/Kwajalein"),
    ("Libya", "Africa/Tripoli"),
    ("MET", "Europe/Brussels"),
    ("MST", "America/Phoenix"),
    ("MST7MDT", "America/Denver"),
    ("Mexico/BajaNorte", "America/Tijuana"),
    ("Mexico/BajaSur", "America/Mazatlan"),
    ("Mexico/General", "America/Mexico_City"),
    ("NZ", "Pacific/Auckland"),
    ("NZ-CHAT", "Pacific/Chatham"),
    ("Navajo", "America/Denver"),
    ("PRC", "Asia/Shanghai"),
    ("PST8PDT", "America/Los_Angeles"),
    ("Pacific/Chuuk", "Pacific/Port_Moresby"),
    ("Pacific/Enderbury", "Pacific/Kanton"),
    ("Pacific/Funafuti", "Pacific/Tarawa"),
    ("Pacific/Johnston", "Pacific/Honolulu"),
    ("Pacific/Majuro", "Pacific/Tarawa"),
    ("Pacific/Midway", "Pacific/Pago_Pago"),
    ("Pacific/Pohnpei", "Pacific/Guadalcanal"),
    ("Pacific/Ponape", "Pacific/Guadalcanal"),
    ("Pacific/Saipan", "Pacific/Guam"),
    ("Pacific/Samoa", "Pacific/Pago_Pago"),
    ("Pacific/Truk", "Pacific/Port_Moresby"),
    ("Pacific/Wake", "Pacific/Tarawa"),
    ("Pacific/Wallis", "Pacific/Tarawa"),
    ("Pacific/Yap", "Pacific/Port_Moresby"),
    ("Poland", "Europe/Warsaw"),
    ("Portugal", "Europe/Lisbon"),
    ("ROC", "Asia/Taipei"),
    ("ROK", "Asia/Seoul"),
    ("Singapore", "Asia/Singapore"),
    ("Turkey", "Europe/Istanbul"),
    ("UCT", "Etc/UTC"),
    ("US/Alaska", "America/Anchorage"),
    ("US/Aleutian", "America/Adak"),
    ("US/Arizona", "America/Phoenix"),
    ("US/Central", "America/Chicago"),
    ("US/East-Indiana", "America/Indiana/Indianapolis"),
    ("US/Eastern", "America/New_York"),
    ("US/Hawaii", "Pacific/Honolulu"),
    ("US/Indiana-Starke", "America/Indiana/Knox"),
    ("US/Michigan", "America/Detroit"),
    ("US/Mountain", "America/Denver"),
    ("US/Pacific", "America/Los_Angeles"),
    ("US/Samoa", "Pacific/Pago_Pago"),
    ("UTC", "Etc/UTC"),
    ("Universal", "Etc/UTC"),
    ("W-SU", "Europe/Moscow"),
    ("WET", "Europe/Lisbon"),
    ("Zulu", "Etc/UTC"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_sorted_and_known_to_chrono_tz() {
        assert!(LINKS.windows(2).all(|w| w[0].0 < w[1].0), "LINKS must stay sorted");
        for (link, zone) in LINKS {
            assert!(Tz::from_str(link).is_ok(), "{link}");
            assert!(matches!(classify(zone), ZoneName::Canonical(_)), "{zone} is current");
        }
        for (_, zone) in ABBREVIATIONS {
            assert!(matches!(classify(zone), ZoneName::Canonical(_)), "{zone} is current");
        }
    }

    #[test]
    fn an_offset_or_an_empty_name_says_what_it_is() {
        let said = |name: &str| match classify(name) {
            ZoneName::Unknown { reason, suggestion } => {
                format!("{reason}{}", unknown_hint(&reason, suggestion.as_deref()))
            }
            other => panic!("{name} is {other:?}"),
        };
        assert_eq!(
            said("UTC+2"),
            "a UTC offset, not an IANA zone: write the location whose clocks you mean, such as \
             `Europe/Paris`, or `Etc/GMT-2` for that offset all year round, with no daylight \
             saving"
        );
        for (name, fixed) in [
            ("GMT-05:00", "Etc/GMT+5"),
            ("+0530", ""),
            ("utc+14", "Etc/GMT-14"),
            ("UTC-0", "Etc/UTC"),
        ] {
            let said = said(name);
            assert!(said.starts_with("a UTC offset"), "{name}: {said}");
            assert_eq!(said.contains("all year"), !fixed.is_empty(), "{name}: {said}");
            assert!(said.contains(&format!("`{fixed}`")) || fixed.is_empty(), "{name}: {said}");
        }
        assert_eq!(said(""), "empty, not a zone (a name such as `Europe/Paris` or `UTC`)");
        assert_eq!(said("  "), "empty, not a zone (a name such as `Europe/Paris` or `UTC`)");
        assert!(said("UTC+x").starts_with("not an IANA time zone"));
        // A name far longer than any zone is compared with none of them.
        let long = "q".repeat(900_000);
        assert_eq!(said(&long), "not an IANA time zone (a name such as `Europe/Paris` or `UTC`)");
        assert_eq!(crate::validate::suggest(&long, ["series_only"].into_iter()), "");
        assert_eq!(said("Europe/Pariss"), "not an IANA time zone; did you mean `Europe/Paris`?");
    }

    #[test]
    fn current_names_utc_and_gmt_are_canonical() {
        for name in ["Europe/Paris", "America/Los_Angeles", "UTC", "GMT", "Etc/UTC", "Etc/GMT+5"] {
            assert!(matches!(classify(name), ZoneName::Canonical(_)), "{name}");
        }
    }

    #[test]
    fn old_names_are_deprecated_with_their_current_zone() {
        assert_eq!(
            classify("US/Pacific"),
            ZoneName::Deprecated {
                zone: Tz::US__Pacific,
                canonical: "America/Los_Angeles",
                advice: None
            }
        );
        assert!(matches!(
            classify("Asia/Calcutta"),
            ZoneName::Deprecated { canonical: "Asia/Kolkata", .. }
        ));
        assert!(matches!(
            classify("EST"),
            ZoneName::Deprecated { canonical: "America/Panama", advice: Some(_), .. }
        ));
    }

    #[test]
    fn abbreviations_and_typos_are_not_zones() {
        let unknown = |name| match classify(name) {
            ZoneName::Unknown { reason, suggestion } => (reason, suggestion),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(unknown("PST").1.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(unknown("CEST").1.as_deref(), Some("Europe/Paris"));
        assert_eq!(unknown("XYZT").0, "a time-zone abbreviation, not an IANA zone");
        assert_eq!(unknown("Europe/Pariss").1.as_deref(), Some("Europe/Paris"));
        assert_eq!(unknown("europe/paris").1.as_deref(), Some("Europe/Paris"));
        assert_eq!(unknown("US/Pacifc").1.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(unknown("Mars/Olympus_Mons").1, None);
    }
}
