//! Tautulli webhooks: Plex events relayed through Tautulli's JSON template, every
//! value a string. They become Plex events for a Plex backend.
//!
//! The template (tests/fixtures/webhooks/tautulli/template.json) is Plex-shaped, so the
//! payload's shape ([`crate::adapters::media::plex::dto`]) and the guid/type rules come
//! from the Plex parser. What
//! differs from Plex:
//!
//! - `Metadata.Guids` (`{imdb, tvdb, tmdb, tvmaze}`, empty strings when unknown) holds
//!   the item's ids for a movie but the **show's** ids for an episode (Tautulli fills
//!   them from the grandparent's guids): for episodes they are series guids only.
//! - No play-state field: only `tautulli.watched` reports one (played).
//! - `tautulli.created` (recently added) is about no user: its user id is dropped.
//! - For a movie `index`/`parentIndex` are `"0"` and `year` is `""`.

use chrono::{DateTime, Utc};

use crate::adapters::media::lenient::read_object;
use crate::adapters::media::plex::dto::Payload;
use crate::adapters::media::plex::webhook::{
    event_item, event_name, typed_item, AgentIds, PLEX_SHAPED_UNREAD,
};
use crate::adapters::media::{ParseError, Unread};
use crate::domain::guid;
use crate::domain::model::{Action, Event, ItemType, Parsed, Source};

/// What the delivery log leaves out of a Tautulli payload ([`super::for_log`]): the
/// Plex-shaped part, and the template's file and slug. Unread.
pub(crate) const UNREAD: &[Unread] = &[
    Unread {
        object: "Metadata",
        names: &["file", "file_size", "grandparentSlug"],
    },
    PLEX_SHAPED_UNREAD[0],
    PLEX_SHAPED_UNREAD[1],
    PLEX_SHAPED_UNREAD[2],
];

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The rules put the time received in place of a missing payload time.
    let _ = received_at;
    let source = Source::Tautulli;
    let mut payload: Payload = read_object(source, json)?;
    let event = event_name(source, &payload.event)?;

    let action = match action_of(&event) {
        Some(a) => a,
        None => {
            let reason = if event.contains(['{', '}']) {
                format!("event {event} is not synced: it holds an unfilled template placeholder")
            } else {
                format!("event {event} is not synced")
            };
            return Ok(Parsed::ignored(source, event, reason));
        }
    };

    // The template carries no library section type: the item's type alone tells.
    let typed = typed_item(source, "Tautulli", &event, payload.metadata.take(), false)?;
    let (md, kind, backend_item_id) = match typed {
        Ok(typed) => typed,
        Err(reason) => return Ok(Parsed::ignored(source, event, reason)),
    };

    let mut ids = AgentIds::default();
    // `{guid}` is the item's own Plex guid: a legacy agent guid counts like in Plex.
    if let Some(g) = md.guid.filled() {
        ids.add_item_guid(kind, &g);
    }
    // `Guids` name the movie itself, or the episode's show.
    let target = match kind {
        ItemType::Movie => &mut ids.guids,
        ItemType::Episode => &mut ids.series,
    };
    for (provider, value) in &md.provider_ids.0 {
        if let (Some(provider), Some(value)) = (provider.filled(), value.filled()) {
            guid::insert(target, &provider, &value);
        }
    }

    // The template carries no play-state field (no viewCount): only a watched
    // notification says anything about it.
    let played = (action == Action::Played).then_some(true);
    let item = event_item(&md, kind, backend_item_id, ids, action, played);

    // Events: Tautulli's added event has no user id. The template still prints an
    // `Account` (empty, or whoever Tautulli puts there), which is not a viewer.
    let user_id = match action {
        Action::Added => None,
        _ => payload.account_id(),
    };

    Ok(Parsed::Event(Event {
        // The player paused or stopped: its position is a resume point.
        paused: matches!(event.as_ref(), "tautulli.pause" | "tautulli.stop"),
        source,
        server_id: payload.server_id(),
        user_id,
        action,
        raw_event: event.into_owned(),
        // No Tautulli event reports a time of its own; the rules use the time received.
        // `lastViewedAt` ({last_viewed_date}) is Plex's lastViewedAt at notification
        // time, i.e. the *previous* viewing ("" on a first viewing: Tautulli's watched
        // notification fires at its own threshold, before Plex records the scrobble).
        // Dating a watched event by it would make a re-watch older than an unplayed
        // mark set in between, so it would be wrongly "stale". It is also a date only
        // by default (too coarse for newer-wins), and a custom format with a time of
        // day is server-local time without an offset. Tautulli sends in real time, so
        // the time received is the better event time.
        occurred_at: None,
        item: Some(item),
    }))
}

/// Events: watched is played; play/start/pause/resume/stop are progress; created is
/// added; anything else (buffer, error, newdevice, the raw `tautulli.{action}`) is not
/// synced.
fn action_of(event: &str) -> Option<Action> {
    Some(match event {
        "tautulli.watched" => Action::Played,
        "tautulli.play" | "tautulli.start" | "tautulli.pause" | "tautulli.resume"
        | "tautulli.stop" => Action::Progress,
        "tautulli.created" => Action::Added,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::media::test_support::*;
    use crate::domain::model::Guids;

    /// The template with `event` filled and the placeholders in `fill` replaced
    /// (`("rating_key", "51377")` replaces `{rating_key}`); others stay unfilled.
    fn template(event: &str, fill: &[(&str, &str)]) -> Vec<u8> {
        let mut s = String::from_utf8(fixture("webhooks/tautulli/template.json")).unwrap();
        s = s.replace("tautulli.{action}", event);
        for (k, v) in fill {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s.into_bytes()
    }

    /// The parses stated field by field in `tests/fixtures/expected/tautulli.json`.
    #[test]
    fn expected_parses() {
        assert_eq!(check_expected("tautulli", parse), 3);
    }

    #[test]
    fn written_cases() {
        assert_eq!(check_cases("tautulli", parse), 2);
    }

    #[test]
    fn template_with_only_the_event_filled_names_what_is_missing() {
        let m = bad(parse(&template("tautulli.play", &[]), now()));
        assert!(m.contains("no Metadata.type"), "{m}");
        let m = bad(parse(
            &template("tautulli.play", &[("media_type", "movie")]),
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
    }

    #[test]
    fn filled_template_play_with_placeholders_left() {
        let body = template(
            "tautulli.play",
            &[
                ("media_type", "episode"),
                ("rating_key", "700"),
                ("episode_num", "2"),
                ("season_num", "0"),
                ("thetvdb_id", "81189"),
                ("imdb_id", ""),
                ("view_offset", "0"),
            ],
        );
        let e = event(parse(&body, now()).unwrap());
        assert_eq!(e.action, Action::Progress);
        // `{user_id}` and `{server_machine_id}` were left unfilled.
        assert_eq!((&e.user_id, &e.server_id), (&None, &None));
        let it = item(&e);
        assert_eq!(it.backend_item_id, "700");
        // Season 0 (specials) is a real season for an episode.
        assert_eq!((it.season, it.episode), (Some(0), Some(2)));
        assert_eq!(it.guids, Guids::new());
        assert_eq!(it.series_guids, guids(&[("tvdb", "81189")]));
        assert_eq!(it.progress_ms, Some(0));
        assert_eq!(
            (it.title.as_deref(), it.year, it.duration_ms),
            (None, None, None)
        );
    }

    #[test]
    fn created_has_no_user() {
        let body = template(
            "tautulli.created",
            &[
                ("user_id", "28475019"),
                ("server_machine_id", "abc123"),
                ("media_type", "movie"),
                ("rating_key", "900"),
                ("imdb_id", "tt0111161"),
                ("themoviedb_id", "278"),
                ("thetvdb_id", ""),
                ("tvmaze_id", ""),
                ("episode_name", "The Shawshank Redemption"),
                ("show_year", "1994"),
            ],
        );
        let e = event(parse(&body, now()).unwrap());
        assert_eq!(e.action, Action::Added);
        assert_eq!(e.raw_event, "tautulli.created");
        assert_eq!(e.user_id, None);
        assert_eq!(e.server_id.as_deref(), Some("abc123"));
        let it = item(&e);
        assert_eq!(it.kind, Some(ItemType::Movie));
        assert_eq!(it.backend_item_id, "900");
        assert_eq!(it.guids, guids(&[("imdb", "tt0111161"), ("tmdb", "278")]));
        assert_eq!(it.title.as_deref(), Some("The Shawshank Redemption"));
        assert_eq!(it.year, Some(1994));
        assert_eq!((it.played, it.progress_ms), (None, None));
    }

    #[test]
    fn every_progress_event_maps_to_progress() {
        for (name, action) in [
            ("tautulli.play", Action::Progress),
            ("tautulli.start", Action::Progress),
            ("tautulli.pause", Action::Progress),
            ("tautulli.resume", Action::Progress),
            ("tautulli.stop", Action::Progress),
            ("tautulli.watched", Action::Played),
            ("tautulli.created", Action::Added),
        ] {
            let body = format!(
                r#"{{"event":"{name}","Account":{{"id":"5"}},"Metadata":{{"type":"movie","ratingKey":"1","viewOffset":"90000"}}}}"#
            );
            let e = event(parse(body.as_bytes(), now()).unwrap());
            assert_eq!(e.action, action, "{name}");
            let it = item(&e);
            let progress = (action == Action::Progress).then_some(90000);
            assert_eq!(it.progress_ms, progress, "{name}");
            let played = (action == Action::Played).then_some(true);
            assert_eq!(it.played, played, "{name}");
            let user = (action != Action::Added).then(|| "5".to_string());
            assert_eq!(e.user_id, user, "{name}");
        }
    }

    #[test]
    fn other_events_are_ignored() {
        for name in [
            "tautulli.buffer",
            "tautulli.newdevice",
            "tautulli.error",
            "media.scrobble",
        ] {
            let body = format!(r#"{{"event":"{name}"}}"#);
            let (source, raw, reason) = ignored(parse(body.as_bytes(), now()).unwrap());
            assert_eq!(source, Source::Tautulli);
            assert_eq!(raw, name);
            assert_eq!(reason, format!("event {name} is not synced"));
        }
    }

    #[test]
    fn other_item_types_are_ignored() {
        let body = br#"{"event":"tautulli.watched","Metadata":{"type":"track","ratingKey":"3"}}"#;
        let (_, raw, reason) = ignored(parse(body, now()).unwrap());
        assert_eq!(raw, "tautulli.watched");
        assert!(
            reason.contains("item type track (music library)"),
            "{reason}"
        );
        let body = br#"{"event":"tautulli.created","Metadata":{"type":"season","ratingKey":"3"}}"#;
        let (_, _, reason) = ignored(parse(body, now()).unwrap());
        assert!(
            reason.contains("item type season is not synced"),
            "{reason}"
        );
    }

    #[test]
    fn legacy_agent_guids_count_like_plex() {
        let body = br#"{"event":"tautulli.watched","Metadata":{"type":"episode","ratingKey":"4",
            "guid":"com.plexapp.agents.thetvdb://268592/1/1?lang=en","index":"","parentIndex":"",
            "Guids":{"imdb":"","tvdb":"268592","tmdb":"","tvmaze":"0"}}}"#;
        let e = event(parse(body, now()).unwrap());
        let it = item(&e);
        assert_eq!(it.guids, Guids::new());
        assert_eq!(it.series_guids, guids(&[("tvdb", "268592")]));
        // Empty index/parentIndex: the numbers come from the relative guid.
        assert_eq!((it.season, it.episode), (Some(1), Some(1)));

        let body = br#"{"event":"tautulli.stop","Metadata":{"type":"movie","ratingKey":"5",
            "guid":"com.plexapp.agents.imdb://tt0322259?lang=en","Guids":{"imdb":"","tmdb":"584"}}}"#;
        let e = event(parse(body, now()).unwrap());
        assert_eq!(
            item(&e).guids,
            guids(&[("imdb", "tt0322259"), ("tmdb", "584")])
        );
    }

    #[test]
    fn full_timestamp_last_viewed_is_still_not_the_event_time() {
        let body = br#"{"event":"tautulli.watched","Metadata":{"type":"movie","ratingKey":"6",
            "lastViewedAt":"2024-03-01 20:15:00"}}"#;
        let e = event(parse(body, now()).unwrap());
        assert_eq!(e.occurred_at, None);
        // Nor the backend's last play: it is the viewing before this one.
        let unix = br#"{"event":"tautulli.watched","Metadata":{"type":"movie","ratingKey":"6",
            "lastViewedAt":"1709324100"}}"#;
        let e = event(parse(unix, now()).unwrap());
        assert_eq!(e.occurred_at, None);
        assert_eq!(item(&e).last_played_at, None);
    }

    #[test]
    fn unquoted_numbers_from_a_custom_template() {
        let body = br#"{"event":"tautulli.pause","Account":{"id":28475019},"Server":{"uuid":"s"},
            "Metadata":{"type":"episode","ratingKey":48213,"index":6,"parentIndex":1,
            "viewOffset":2467000,"year":2024,"duration":2652000,
            "Guids":{"imdb":"tt28104417","tvdb":431877,"tmdb":null}}}"#;
        let e = event(parse(body, now()).unwrap());
        assert_eq!(e.user_id.as_deref(), Some("28475019"));
        let it = item(&e);
        assert_eq!(it.backend_item_id, "48213");
        assert_eq!((it.season, it.episode), (Some(1), Some(6)));
        assert_eq!(it.progress_ms, Some(2467000));
        assert_eq!(it.year, Some(2024));
        assert_eq!(it.duration_ms, Some(2652000));
        assert_eq!(
            it.series_guids,
            guids(&[("imdb", "tt28104417"), ("tvdb", "431877")])
        );
    }

    #[test]
    fn guids_in_odd_shapes_read_as_none() {
        for guids in [r#""{guids}""#, "null", "[1,2]", "7"] {
            let body = format!(
                r#"{{"event":"tautulli.play","Metadata":{{"type":"movie","ratingKey":"8","Guids":{guids}}}}}"#
            );
            let e = event(parse(body.as_bytes(), now()).unwrap());
            assert_eq!(item(&e).guids, Guids::new(), "{guids}");
        }
    }

    #[test]
    fn bad_payloads() {
        let m = bad(parse(b"{\"event\": \"tautulli.watched\",", now()));
        assert!(m.starts_with("tautulli payload is not valid JSON"), "{m}");
        let m = bad(parse(b"[]", now()));
        assert_eq!(m, "tautulli payload is a JSON array, not a JSON object");
        let m = bad(parse(br#"{"Metadata":{}}"#, now()));
        assert_eq!(m, "tautulli payload has no 'event'");
        let m = bad(parse(br#"{"event":"tautulli.watched"}"#, now()));
        assert_eq!(m, "Tautulli tautulli.watched payload has no Metadata");
        let m = bad(parse(
            br#"{"event":"tautulli.watched","Metadata":{"type":"movie","ratingKey":""}}"#,
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
        let m = bad(parse(
            br#"{"event":"tautulli.watched","Metadata":{"type":"episode","ratingKey":"{rating_key}"}}"#,
            now(),
        ));
        assert!(m.contains("ratingKey missing"), "{m}");
    }
}
