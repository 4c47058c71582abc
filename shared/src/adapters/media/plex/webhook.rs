//! Plex webhooks: what each event means (the table of events in this module), read into an [`Event`].
//!
//! The body is the JSON of the multipart part `payload`. It is read into small typed
//! structs that borrow from the input and skip everything else (cast lists, ratings,
//! images) without building it, so parsing costs less than a generic JSON tree.
//!
//! Tautulli relays Plex in a Plex-shaped template, so the payload's shape
//! ([`super::dto`]), the guid rules and the item-type rules here are shared with
//! [`crate::adapters::media::tautulli`].

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::dto::{synced_type, Metadata, Payload};
use crate::adapters::media::lenient::{read_object, Scalar};
use crate::adapters::media::{ParseError, Unread};
use crate::domain::guid::{self, AgentGuid};
use crate::domain::model::{Action, Event, EventItem, Guids, ItemType, Parsed, Source};
use crate::domain::when;

/// What a Plex-shaped payload (Plex's, or Tautulli's template of it) carries and no
/// parser reads: `Metadata`'s texts, image paths, keys and dates, the account's
/// picture and the player (a person's name and address). Each sender's `UNREAD` adds
/// its own.
pub(crate) const PLEX_SHAPED_UNREAD: [Unread; 3] = [
    Unread {
        object: "Metadata",
        names: &[
            "summary",
            "tagline",
            "thumb",
            "art",
            "parentThumb",
            "grandparentThumb",
            "grandparentArt",
            "grandparentTheme",
            "key",
            "parentKey",
            "grandparentKey",
            "librarySectionKey",
            "contentRating",
            "audienceRating",
            "audienceRatingImage",
            "userRating",
            "skipCount",
            "originallyAvailableAt",
            "addedAt",
            "updatedAt",
        ],
    },
    Unread {
        object: "Account",
        names: &["thumb"],
    },
    Unread {
        object: "",
        names: &["Player"],
    },
];

/// What the delivery log leaves out of a Plex payload ([`super::super::for_log`]): the
/// Plex-shaped part, and `Metadata`'s tag lists (cast and crew, genres, ratings,
/// labels, chapters: the cast alone is half of a movie's payload) and Plex's own texts
/// and keys. The parser reads none of them.
pub(crate) const UNREAD: &[Unread] = &[
    PLEX_SHAPED_UNREAD[0],
    PLEX_SHAPED_UNREAD[1],
    PLEX_SHAPED_UNREAD[2],
    Unread {
        object: "Metadata",
        names: &[
            "Role",
            "Director",
            "Writer",
            "Producer",
            "Country",
            "Genre",
            "Similar",
            "Collection",
            "Label",
            "Field",
            "Mood",
            "Style",
            "Rating",
            "Image",
            "UltraBlurColors",
            "Chapter",
            "Marker",
            "theme",
            "ratingImage",
            "primaryExtraKey",
            "chapterSource",
            "librarySectionID",
            "studio",
        ],
    },
];

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The time received is applied later by the rules (`when::event_time`); the parser
    // only reports the payload's own time.
    let _ = received_at;
    let source = Source::Plex;
    let mut payload: Payload = read_object(source, json)?;
    let event = event_name(source, &payload.event)?;

    let action = match action_of(&event) {
        Some(a) => a,
        None => {
            let reason = format!("event {event} is not synced");
            return Ok(Parsed::ignored(source, event, reason));
        }
    };

    let (md, kind, backend_item_id) =
        match typed_item(source, "Plex", &event, payload.metadata.take(), true)? {
            Ok(typed) => typed,
            Err(reason) => return Ok(Parsed::ignored(source, event, reason)),
        };

    let mut ids = AgentIds::default();
    // The legacy agent guid first, so the new agent's `Guid[]` wins where both name the
    // same kind.
    if let Some(g) = md.guid.filled() {
        ids.add_item_guid(kind, &g);
    }
    for g in md.guid_list.iter().flatten() {
        if let Some(g) = g.id.filled() {
            ids.add_item_guid(kind, &g);
        }
    }
    if kind == ItemType::Episode {
        if let Some(g) = md.grandparent_guid.filled() {
            ids.add_series_guid(&g);
        }
    }

    // Plex omits a zero viewCount, so a missing one means "not played".
    let played = match action {
        Action::Played => Some(true),
        _ => Some(md.view_count.u64().unwrap_or(0) > 0),
    };

    // Event time: for a scrobble, `lastViewedAt` is the time of this very viewing (Plex
    // builds the payload after recording it). On play/pause/resume/stop and on
    // library events it dates an *earlier* viewing, not this event, so those report no
    // time of their own and the rules use the time received.
    let occurred_at = match action {
        Action::Played => md.last_viewed_at.i64().and_then(when::from_unix),
        _ => None,
    };

    let item = EventItem {
        // Plex's own last play, on every event: it dates the watched a progress event
        // reports (the rules). Tautulli's copy of it is the previous viewing: not set
        // there.
        last_played_at: md.last_viewed_at.i64().and_then(when::from_unix),
        ..event_item(&md, kind, backend_item_id, ids, action, played)
    };

    Ok(Parsed::Event(Event {
        // The player paused or stopped: its position is a resume point.
        paused: matches!(event.as_ref(), "media.pause" | "media.stop"),
        source,
        server_id: payload.server_id(),
        user_id: payload.account_id(),
        action,
        raw_event: event.into_owned(),
        occurred_at,
        item: Some(item),
    }))
}

/// Events: scrobble is played; play/pause/resume/stop are progress; new and on-deck
/// items are added. `media.rate`, `admin.*`, `device.new`, `playback.started` and
/// anything else are not synced.
fn action_of(event: &str) -> Option<Action> {
    Some(match event {
        "media.scrobble" => Action::Played,
        "media.play" | "media.pause" | "media.resume" | "media.stop" => Action::Progress,
        "library.new" | "library.on.deck" => Action::Added,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------
// Shared with the Tautulli parser.
// ---------------------------------------------------------------------------------

/// The top-level `event`; missing, empty or non-text is a bad payload.
pub(crate) fn event_name<'a>(
    source: Source,
    event: &'a Scalar<'_>,
) -> Result<Cow<'a, str>, ParseError> {
    match event {
        Scalar::Absent => Err(ParseError::bad(format!("{source} payload has no 'event'"))),
        Scalar::Str(_) => event
            .filled()
            .ok_or_else(|| ParseError::bad(format!("{source} payload has an empty 'event'"))),
        _ => Err(ParseError::bad(format!(
            "{source} payload's 'event' is not a string"
        ))),
    }
}

/// `Metadata.type`: movies and episodes are synced; any other type is ignored with a
/// reason naming it (the outer `Err` is a payload that names no type at all).
pub(crate) fn item_type(
    source: Source,
    event: &str,
    kind: &Scalar<'_>,
    section_type: &Scalar<'_>,
) -> Result<Result<ItemType, String>, ParseError> {
    let Some(t) = kind.filled() else {
        return Err(ParseError::bad(format!(
            "{source} {event} payload has no Metadata.type: cannot tell a movie from an episode"
        )));
    };
    if let Some(kind) = synced_type(&t) {
        return Ok(Ok(kind));
    }
    let section = section_type.filled();
    let section = section.as_deref().unwrap_or("");
    let library = match t.to_ascii_lowercase().as_str() {
        "track" | "album" | "artist" => Some("music library"),
        "photo" | "photoalbum" | "picture" => Some("photo library"),
        _ if section.eq_ignore_ascii_case("artist") => Some("music library"),
        _ if section.eq_ignore_ascii_case("photo") => Some("photo library"),
        _ => None,
    };
    Ok(Err(match library {
        Some(lib) => format!("item type {t} ({lib}) is not synced; only movies and episodes are"),
        None => format!("item type {t} is not synced; only movies and episodes are"),
    }))
}

/// The item a Plex-shaped payload is about: its `Metadata` (required), its type (or
/// why it is not synced) and its ratingKey. `vendor` names the sender in errors;
/// `read_section` says whether `librarySectionType` may tell the library.
pub(crate) fn typed_item<'a>(
    source: Source,
    vendor: &str,
    event: &str,
    metadata: Option<Metadata<'a>>,
    read_section: bool,
) -> Result<Result<(Metadata<'a>, ItemType, String), String>, ParseError> {
    let md = metadata
        .ok_or_else(|| ParseError::bad(format!("{vendor} {event} payload has no Metadata")))?;
    let section = if read_section {
        &md.library_section_type
    } else {
        &Scalar::Absent
    };
    let kind = match item_type(source, event, &md.kind, section)? {
        Ok(kind) => kind,
        Err(reason) => return Ok(Err(reason)),
    };
    let backend_item_id = rating_key(source, event, kind, &md.rating_key)?;
    Ok(Ok((md, kind, backend_item_id)))
}

/// `Metadata.ratingKey`, the item's id on its server: required.
pub(crate) fn rating_key(
    source: Source,
    event: &str,
    kind: ItemType,
    key: &Scalar<'_>,
) -> Result<String, ParseError> {
    key.filled().map(Cow::into_owned).ok_or_else(|| {
        ParseError::bad(format!(
            "{source} {event} payload for a {}: Metadata.ratingKey missing",
            kind.as_str()
        ))
    })
}

/// The event's item from its `Metadata` and the ids collected from its guids.
pub(crate) fn event_item(
    md: &Metadata<'_>,
    kind: ItemType,
    backend_item_id: String,
    ids: AgentIds,
    action: Action,
    played: Option<bool>,
) -> EventItem {
    let episode = kind == ItemType::Episode;
    EventItem {
        kind: Some(kind),
        backend_item_id,
        title: md.title.filled().map(Cow::into_owned),
        year: md.year.year(),
        series_title: md
            .grandparent_title
            .filled()
            .map(Cow::into_owned)
            .filter(|_| episode),
        // A relative guid names the numbers when `parentIndex`/`index` are missing; a
        // movie has none (Tautulli writes "0").
        season: md.parent_index.u32().or(ids.season).filter(|_| episode),
        episode: md.index.u32().or(ids.episode).filter(|_| episode),
        guids: ids.guids,
        series_guids: ids.series,
        played,
        // Only progress events carry a resume position; a scrobble means "finished" and
        // an added event does not touch play state.
        progress_ms: match action {
            Action::Progress => md.view_offset.u64(),
            _ => None,
        },
        duration_ms: md.duration.u64(),
        // What the backend says of its own last play: Plex's webhook only (`parse`).
        last_played_at: None,
    }
}

/// Ids collected from Plex agent guids.
#[derive(Debug, Default)]
pub(crate) struct AgentIds {
    /// The item's own ids.
    pub guids: Guids,
    /// The show's ids (episodes only).
    pub series: Guids,
    /// Season and episode named by a relative guid, used when the payload lacks
    /// `parentIndex`/`index`.
    pub season: Option<u32>,
    pub episode: Option<u32>,
}

impl AgentIds {
    /// A guid of the item itself (`Metadata.guid` or an entry of `Guid[]`).
    /// `plex://` and `local://` are private to one server and give nothing.
    pub fn add_item_guid(&mut self, kind: ItemType, raw: &str) {
        match (guid::parse_plex_guid(raw), kind) {
            (Some(AgentGuid::Id(k, v)), _) => {
                self.guids.insert(k.to_string(), v);
            }
            // `thetvdb://SERIES/S/E`, HAMA `tvdb-81797/22/70`: the episode is named by its
            // show's id; the relative guid is built later from series guids + S/E.
            (
                Some(AgentGuid::Relative {
                    kind: k,
                    series,
                    season,
                    episode,
                }),
                ItemType::Episode,
            ) => {
                self.series.insert(k.to_string(), series);
                self.season.get_or_insert(season);
                self.episode.get_or_insert(episode);
            }
            // HAMA without season/episode names a whole anime entry.
            (Some(AgentGuid::Series(k, v)), ItemType::Episode) => {
                self.series.insert(k.to_string(), v);
            }
            // An AniDB entry of an anime movie is the movie itself (AniDB has one
            // namespace); a HAMA tvdb id on a movie is a *series* id and would collide
            // with TVDB's separate movie ids, so it is dropped.
            (Some(AgentGuid::Series("anidb", v)), ItemType::Movie) => {
                self.guids.insert("anidb".to_string(), v);
            }
            _ => {}
        }
    }

    /// A guid of the episode's show (`grandparentGuid`): legacy and HAMA show guids
    /// become series guids.
    pub fn add_series_guid(&mut self, raw: &str) {
        match guid::parse_plex_guid(raw) {
            Some(AgentGuid::Id(k, v)) | Some(AgentGuid::Series(k, v)) => {
                self.series.insert(k.to_string(), v);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::media::test_support::*;

    /// The parses stated field by field in `tests/fixtures/expected/plex.json`.
    #[test]
    fn expected_parses() {
        assert_eq!(check_expected("plex", parse), 8);
    }

    #[test]
    fn written_cases() {
        assert_eq!(check_cases("plex", parse), 4);
    }

    fn minimal(event: &str, metadata: &str) -> Vec<u8> {
        format!(
            r#"{{"event":"{event}","Account":{{"id":9}},"Server":{{"uuid":"srv"}},"Metadata":{metadata}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn legacy_agent_movie_guid() {
        let body = minimal(
            "media.stop",
            r#"{"ratingKey":"5","type":"movie","guid":"com.plexapp.agents.imdb://tt0322259?lang=en","viewCount":2,"lastViewedAt":1600000000}"#,
        );
        let e = event(parse(&body, now()).unwrap());
        assert_eq!(e.action, Action::Progress);
        assert_eq!(e.occurred_at, None);
        let it = item(&e);
        assert_eq!(it.guids, guids(&[("imdb", "tt0322259")]));
        assert_eq!(it.series_guids, Guids::new());
        assert_eq!(it.played, Some(true));
        // media.stop carries no viewOffset.
        assert_eq!(it.progress_ms, None);
        // No event time, but the last play it reports dates its watched.
        assert_eq!(it.last_played_at, when::from_unix(1600000000));
    }

    #[test]
    fn legacy_thetvdb_episode_gives_series_guid_and_numbers() {
        let body = minimal(
            "media.scrobble",
            r#"{"ratingKey":"77","type":"episode","guid":"com.plexapp.agents.thetvdb://268592/1/1?lang=en","grandparentGuid":"com.plexapp.agents.thetvdb://268592?lang=en"}"#,
        );
        let e = event(parse(&body, now()).unwrap());
        let it = item(&e);
        assert_eq!(it.guids, Guids::new());
        assert_eq!(it.series_guids, guids(&[("tvdb", "268592")]));
        // No parentIndex/index: the numbers come from the relative guid.
        assert_eq!((it.season, it.episode), (Some(1), Some(1)));
        // No lastViewedAt: the rules use the time received.
        assert_eq!(e.occurred_at, None);
    }

    #[test]
    fn grandparent_show_guid_gives_series_guid() {
        let body = minimal(
            "media.pause",
            r#"{"ratingKey":"78","type":"episode","guid":"plex://episode/abc","grandparentGuid":"com.plexapp.agents.themoviedb://1399?lang=en","parentIndex":0,"index":4,"viewOffset":70000,"Guid":[{"id":"tvdb://555"}]}"#,
        );
        let e = event(parse(&body, now()).unwrap());
        let it = item(&e);
        assert_eq!(it.guids, guids(&[("tvdb", "555")]));
        assert_eq!(it.series_guids, guids(&[("tmdb", "1399")]));
        // Season 0 holds specials: kept.
        assert_eq!((it.season, it.episode), (Some(0), Some(4)));
        assert_eq!(it.progress_ms, Some(70000));
    }

    #[test]
    fn private_guids_never_become_ids() {
        let body = minimal(
            "library.on.deck",
            r#"{"ratingKey":"79","type":"movie","guid":"local://1234","Guid":[{"id":"plex://movie/5d77"},{"id":"tmdb://0"},{"id":"imdb://tt0111161"}]}"#,
        );
        let e = event(parse(&body, now()).unwrap());
        assert_eq!(e.action, Action::Added);
        assert_eq!(item(&e).guids, guids(&[("imdb", "tt0111161")]));
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        let body = br#"{"event":"media.pause","Account":{"id":"42"},"Server":{"uuid":"srv"},
            "Metadata":{"ratingKey":123,"type":"episode","parentIndex":"3","index":"12",
            "viewOffset":"61000","viewCount":"2","year":"2020","duration":1500000.0,
            "lastViewedAt":"1600000000","grandparentTitle":"Show","title":"Ep"}}"#;
        let e = event(parse(body, now()).unwrap());
        assert_eq!(e.user_id.as_deref(), Some("42"));
        let it = item(&e);
        assert_eq!(it.backend_item_id, "123");
        assert_eq!((it.season, it.episode), (Some(3), Some(12)));
        assert_eq!(it.progress_ms, Some(61000));
        assert_eq!(it.played, Some(true));
        assert_eq!(it.year, Some(2020));
        assert_eq!(it.duration_ms, Some(1500000));
    }

    #[test]
    fn scrobble_time_as_string_and_zero_view_count() {
        let body = minimal(
            "media.scrobble",
            r#"{"ratingKey":"80","type":"movie","lastViewedAt":"1700000000","viewCount":0}"#,
        );
        let e = event(parse(&body, now()).unwrap());
        assert_eq!(e.occurred_at, when::from_unix(1_700_000_000));
        // A scrobble is played whatever viewCount says.
        assert_eq!(item(&e).played, Some(true));
    }

    #[test]
    fn unsynced_events_are_ignored_by_name() {
        for name in [
            "admin.database.backup",
            "admin.database.corrupted",
            "device.new",
            "playback.started",
            "media.rate",
            "something.else",
        ] {
            let body = format!(r#"{{"event":"{name}","Server":{{"uuid":"srv"}}}}"#);
            let (source, raw, reason) = ignored(parse(body.as_bytes(), now()).unwrap());
            assert_eq!(source, Source::Plex);
            assert_eq!(raw, name);
            assert_eq!(reason, format!("event {name} is not synced"));
        }
    }

    #[test]
    fn other_item_types_are_ignored_with_their_type() {
        let cases = [
            ("media.scrobble", "show", "item type show is not synced"),
            ("media.play", "clip", "item type clip"),
            ("library.new", "photo", "item type photo (photo library)"),
        ];
        for (event, kind, says) in cases {
            let metadata = format!(r#"{{"ratingKey":"1","type":"{kind}"}}"#);
            let (_, _, reason) = ignored(parse(&minimal(event, &metadata), now()).unwrap());
            assert!(reason.contains(says), "{reason}");
        }
    }

    #[test]
    fn malformed_json_is_bad_payload() {
        let m = bad(parse(
            br#"{"event": "media.scrobble", "Metadata": {"#,
            now(),
        ));
        assert!(m.contains("not valid JSON"), "{m}");
        let m = bad(parse(b"not json at all", now()));
        assert!(m.contains("not valid JSON"), "{m}");
        let m = bad(parse(br#"{"event":"media.play"} trailing"#, now()));
        assert!(m.contains("not valid JSON"), "{m}");
    }

    #[test]
    fn non_object_json_is_bad_payload() {
        let m = bad(parse(br#"["media.scrobble", {}, {}, {}]"#, now()));
        assert_eq!(m, "plex payload is a JSON array, not a JSON object");
        let m = bad(parse(b"  null ", now()));
        assert!(m.contains("JSON null, not a JSON object"), "{m}");
        let m = bad(parse(b"42", now()));
        assert!(m.contains("a JSON number, not a JSON object"), "{m}");
        let m = bad(parse(b"  \n", now()));
        assert!(m.contains("empty"), "{m}");
    }

    #[test]
    fn missing_or_odd_event_is_bad_payload() {
        let m = bad(parse(
            br#"{"Metadata":{"ratingKey":"1","type":"movie"}}"#,
            now(),
        ));
        assert_eq!(m, "plex payload has no 'event'");
        let m = bad(parse(br#"{"event":null}"#, now()));
        assert_eq!(m, "plex payload has no 'event'");
        let m = bad(parse(br#"{"event":"  "}"#, now()));
        assert_eq!(m, "plex payload has an empty 'event'");
        let m = bad(parse(br#"{"event":5}"#, now()));
        assert_eq!(m, "plex payload's 'event' is not a string");
    }

    #[test]
    fn missing_rating_key_is_bad_payload() {
        let m = bad(parse(
            &minimal("media.scrobble", r#"{"type":"movie","title":"X"}"#),
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
        let m = bad(parse(
            &minimal("media.play", r#"{"type":"episode","ratingKey":""}"#),
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
        let m = bad(parse(
            &minimal("media.play", r#"{"type":"episode","ratingKey":null}"#),
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
    }

    #[test]
    fn synced_event_without_metadata_or_type_is_bad_payload() {
        let m = bad(parse(br#"{"event":"media.scrobble"}"#, now()));
        assert_eq!(m, "Plex media.scrobble payload has no Metadata");
        let m = bad(parse(
            &minimal("media.scrobble", r#"{"ratingKey":"1"}"#),
            now(),
        ));
        assert!(m.contains("no Metadata.type"), "{m}");
    }

    #[test]
    fn wrong_shapes_never_panic() {
        for body in [
            &br#"{"event":"media.play","Metadata":[]}"#[..],
            br#"{"event":"media.play","Metadata":"x"}"#,
            br#"{"event":"media.play","Account":5,"Metadata":{"type":"movie","ratingKey":"1"}}"#,
            br#"{"event":"media.play","Metadata":{"type":"movie","ratingKey":{"a":1},"Guid":{}}}"#,
            br#"{"event":"media.play","Metadata":{"type":"movie","ratingKey":"1","viewOffset":-5,"year":99999,"index":1e300}}"#,
            b"\xEF\xBB\xBF{\"event\":\"media.play\"}",
            b"{\"event\":\"media.play\xff\"}",
        ] {
            let _ = parse(body, now());
        }
        // Odd scalars degrade to "unknown", they do not fail the payload.
        let e = event(
            parse(
                br#"{"event":"media.play","Metadata":{"type":"movie","ratingKey":"1","viewOffset":-5,"year":99999,"index":1e300,"viewCount":true}}"#,
                now(),
            )
            .unwrap(),
        );
        let it = item(&e);
        assert_eq!(
            (it.progress_ms, it.year, it.played),
            (None, None, Some(false))
        );
        assert_eq!((e.server_id, e.user_id), (None, None));
    }
}
