//! Provider-id normalization: every spelling the media servers use becomes
//! `kind:value` with a known kind and a value that really is an id.
//!
//! Plex (`imdb://tt..`, `tmdb://..`, legacy `com.plexapp.agents.*://..?lang=en`,
//! HAMA `com.plexapp.agents.hama://tvdb-81797/22/70`), Jellyfin `Provider_imdb`,
//! Emby `ProviderIds` in any key case, Tautulli `Guids`. `plex://` and `local://` are
//! private to one server and never become guids.

use crate::domain::model::Guids;

/// The id kinds we match on.
pub const KINDS: [&str; 6] = ["imdb", "tmdb", "tvdb", "tvmaze", "tvrage", "anidb"];

/// Map a provider name in any spelling to its kind, or `None` for providers we do not
/// match on (collections, music ids, websites).
pub fn kind_of(provider: &str) -> Option<&'static str> {
    let p = provider.trim().to_ascii_lowercase();
    let p = p.strip_prefix("provider_").unwrap_or(&p);
    Some(match p {
        "imdb" => "imdb",
        "tmdb" | "themoviedb" | "moviedb" => "tmdb",
        "tvdb" | "thetvdb" => "tvdb",
        "tvmaze" => "tvmaze",
        "tvrage" => "tvrage",
        "anidb" => "anidb",
        _ => return None,
    })
}

/// Validate and normalize one id; `None` when the value is not an id of that kind
/// (a URL in Emby's ProviderIds, an empty Tautulli placeholder, `0`).
pub fn normalize(provider: &str, value: &str) -> Option<(&'static str, String)> {
    let kind = kind_of(provider)?;
    let v = value.trim();
    // `get` rather than slicing: a value may start with a multi-byte character.
    let imdb_digits = v
        .get(..2)
        .filter(|p| p.eq_ignore_ascii_case("tt"))
        .and_then(|_| v.get(2..))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let v = match kind {
        "imdb" => format!("tt{}", imdb_digits?),
        _ => {
            let ok = !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_digit())
                && v.bytes().any(|b| b != b'0');
            if !ok {
                return None;
            }
            v.trim_start_matches('0').to_string()
        }
    };
    Some((kind, v))
}

/// Insert a normalized id into `guids` if it is one; returns whether it was.
pub fn insert(guids: &mut Guids, provider: &str, value: &str) -> bool {
    match normalize(provider, value) {
        Some((k, v)) => {
            guids.insert(k.to_string(), v);
            true
        }
        None => false,
    }
}

/// Parse `kind:value` as written in the api (`imdb:tt0111161`).
pub fn parse_written(s: &str) -> Option<(&'static str, String)> {
    let (k, v) = s.split_once(':')?;
    normalize(k, v)
}

/// What a Plex agent guid says about an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentGuid {
    /// The item's own id (`imdb://tt..`, `com.plexapp.agents.imdb://tt..`).
    Id(&'static str, String),
    /// An episode named by its show's id plus season and episode
    /// (`com.plexapp.agents.thetvdb://268592/1/1`, HAMA `tvdb-81797/22/70`).
    Relative {
        kind: &'static str,
        series: String,
        season: u32,
        episode: u32,
    },
    /// A show or season id (`hama://tvdb-81797`), useful as a series guid only.
    Series(&'static str, String),
}

/// Read one Plex guid in any agent's spelling. `plex://`, `local://`, music agents
/// and anything unreadable give `None`.
pub fn parse_plex_guid(raw: &str) -> Option<AgentGuid> {
    let (scheme, rest) = raw.split_once("://")?;
    // Drop `?lang=en` and similar.
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let agent = scheme.strip_prefix("com.plexapp.agents.").unwrap_or(scheme);
    let agent = agent.to_ascii_lowercase();
    let mut parts = rest.split('/');
    let head = parts.next()?;
    let tail: Vec<&str> = parts.collect();

    let (kind, id) = if agent == "hama" {
        // HAMA: `tvdb-81797`, `anidb-123`; other HAMA sources are not matched on.
        let (src, id) = head.split_once('-')?;
        let kind = match src.to_ascii_lowercase().as_str() {
            "tvdb" => "tvdb",
            "anidb" => "anidb",
            _ => return None,
        };
        (kind, id)
    } else {
        (kind_of(&agent)?, head)
    };
    let (kind, id) = normalize(kind, id)?;
    match tail.as_slice() {
        [] => {
            if agent == "hama" {
                Some(AgentGuid::Series(kind, id))
            } else {
                Some(AgentGuid::Id(kind, id))
            }
        }
        [season, episode] => Some(AgentGuid::Relative {
            kind,
            series: id,
            season: season.parse().ok()?,
            episode: episode.parse().ok()?,
        }),
        // `thetvdb://123/1` names a season: nothing to match an item on.
        _ => None,
    }
}

/// A relative episode guid, `tvdb:81797/22/70`.
pub fn relative(kind: &str, series: &str, season: u32, episode: u32) -> String {
    format!("{kind}:{series}/{season}/{episode}")
}

/// Guids from `(kind, value)` pairs as written, for tests.
#[cfg(test)]
pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Guids {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_plex_agent_guids() {
        assert_eq!(
            parse_plex_guid("imdb://tt0111161"),
            Some(AgentGuid::Id("imdb", "tt0111161".into()))
        );
        assert_eq!(
            parse_plex_guid("tmdb://278"),
            Some(AgentGuid::Id("tmdb", "278".into()))
        );
        assert_eq!(
            parse_plex_guid("tvdb://10594417"),
            Some(AgentGuid::Id("tvdb", "10594417".into()))
        );
    }

    #[test]
    fn legacy_plex_agents() {
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.imdb://tt0322259?lang=en"),
            Some(AgentGuid::Id("imdb", "tt0322259".into()))
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.themoviedb://584?lang=en"),
            Some(AgentGuid::Id("tmdb", "584".into()))
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.thetvdb://268592/1/1?lang=en"),
            Some(AgentGuid::Relative {
                kind: "tvdb",
                series: "268592".into(),
                season: 1,
                episode: 1
            })
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.thetvdb://268592/1?lang=en"),
            None
        );
    }

    #[test]
    fn hama_guids() {
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.hama://tvdb-81797/22/70?lang=en"),
            Some(AgentGuid::Relative {
                kind: "tvdb",
                series: "81797".into(),
                season: 22,
                episode: 70
            })
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.hama://anidb-123?lang=en"),
            Some(AgentGuid::Series("anidb", "123".into()))
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.hama://tvdb-81797?lang=en"),
            Some(AgentGuid::Series("tvdb", "81797".into()))
        );
        assert_eq!(
            parse_plex_guid("com.plexapp.agents.hama://tmdb2-5/1/1"),
            None
        );
    }

    #[test]
    fn private_and_foreign_guids_are_not_ids() {
        assert_eq!(
            parse_plex_guid("plex://movie/5d7768313c3c2a001fbcd1f0"),
            None
        );
        assert_eq!(parse_plex_guid("local://1234"), None);
        assert_eq!(parse_plex_guid("com.plexapp.agents.none://abc"), None);
        assert_eq!(
            parse_plex_guid(
                "com.plexapp.agents.plexmusic://gracenote/track/7572499-91016293BE6BF7F1AB2F848F736E74E5"
            ),
            None
        );
        assert_eq!(parse_plex_guid("no scheme"), None);
    }

    #[test]
    fn provider_keys_in_any_case() {
        assert_eq!(
            normalize("Provider_imdb", "tt9764362"),
            Some(("imdb", "tt9764362".into()))
        );
        assert_eq!(
            normalize("Imdb", "tt0322259"),
            Some(("imdb", "tt0322259".into()))
        );
        assert_eq!(
            normalize("IMDB", "TT0322259"),
            Some(("imdb", "tt0322259".into()))
        );
        assert_eq!(normalize("Tmdb", "584"), Some(("tmdb", "584".into())));
        assert_eq!(
            normalize("TheTVDB", "20800"),
            Some(("tvdb", "20800".into()))
        );
        assert_eq!(
            normalize("Provider_tvmaze", "42"),
            Some(("tvmaze", "42".into()))
        );
        assert_eq!(
            normalize("AniDB", "281407"),
            Some(("anidb", "281407".into()))
        );
    }

    #[test]
    fn non_ids_are_rejected() {
        assert_eq!(normalize("Official Website", "http://example.org"), None);
        assert_eq!(normalize("Provider_tmdbcollection", "1326214"), None);
        assert_eq!(normalize("Imdb", "http://www.imdb.com/title/tt1"), None);
        assert_eq!(normalize("imdb", "tt"), None);
        assert_eq!(normalize("tmdb", ""), None);
        assert_eq!(normalize("tvmaze", "0"), None);
        assert_eq!(normalize("tvdb", "12a"), None);
        assert_eq!(
            normalize("imdb", "\u{5755a}1"),
            None,
            "multi-byte start must not panic"
        );
        assert_eq!(normalize("musicbrainztrack", "3c2c1f40"), None);
    }

    #[test]
    fn written_form() {
        assert_eq!(
            parse_written("imdb:tt0111161"),
            Some(("imdb", "tt0111161".into()))
        );
        assert_eq!(parse_written("tmdb:abc"), None);
        assert_eq!(parse_written("imdb"), None);
    }
}
