//! Tautulli webhooks: Plex events relayed through Tautulli's JSON template, every
//! value a string. They become Plex events for a Plex backend.
//!
//! The template (tests/fixtures/webhooks/tautulli/template.json) is Plex-shaped, so the
//! tolerant scalar reader and the guid/type rules come from the Plex parser. What
//! differs from Plex:
//!
//! - `Metadata.Guids` (`{imdb, tvdb, tmdb, tvmaze}`, empty strings when unknown) holds
//!   the item's ids for a movie but the **show's** ids for an episode (Tautulli fills
//!   them from the grandparent's guids): for episodes they are series guids only.
//! - No play-state field: only `tautulli.watched` reports one (played).
//! - `tautulli.created` (recently added) is about no user: its user id is dropped.
//! - For a movie `index`/`parentIndex` are `"0"` and `year` is `""`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::backends::plex::webhook::{
    event_name, item_type, rating_key, read_object, Account, AgentIds, Loose, Server,
};
use crate::backends::ParseError;
use crate::guid;
use crate::model::{Action, Event, EventItem, ItemType, Parsed, Source};

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The rules put the time received in place of a missing payload time.
    let _ = received_at;
    let source = Source::Tautulli;
    let payload: Payload = read_object(source, json)?;
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

    let md = payload
        .metadata
        .ok_or_else(|| ParseError::bad(format!("Tautulli {event} payload has no Metadata")))?;
    let kind = match item_type(source, &event, &md.kind, &Loose::Absent)? {
        Ok(kind) => kind,
        Err(reason) => return Ok(Parsed::ignored(source, event, reason)),
    };
    let backend_item_id = rating_key(source, &event, kind, &md.rating_key)?;

    let mut ids = AgentIds::default();
    // `{guid}` is the item's own Plex guid: a legacy agent guid counts like in Plex.
    if let Some(g) = md.guid.text() {
        ids.add_item_guid(kind, &g);
    }
    // `Guids` name the movie itself, or the episode's show.
    let target = match kind {
        ItemType::Movie => &mut ids.guids,
        ItemType::Episode => &mut ids.series,
    };
    for (provider, value) in &md.guids.0 {
        if let (Some(provider), Some(value)) = (provider.text(), value.text()) {
            guid::insert(target, &provider, &value);
        }
    }

    let (season, episode) = match kind {
        // Tautulli writes "0" for a movie's season and episode numbers.
        ItemType::Movie => (None, None),
        ItemType::Episode => (
            md.parent_index.u32().or(ids.season),
            md.index.u32().or(ids.episode),
        ),
    };

    let item = EventItem {
        kind: Some(kind),
        backend_item_id,
        title: md.title.text().map(Cow::into_owned),
        year: md.year.year(),
        series_title: match kind {
            ItemType::Episode => md.grandparent_title.text().map(Cow::into_owned),
            ItemType::Movie => None,
        },
        season,
        episode,
        guids: ids.guids,
        series_guids: ids.series,
        // The template carries no play-state field (no viewCount): only a watched
        // notification says anything about it.
        played: (action == Action::Played).then_some(true),
        progress_ms: match action {
            Action::Progress => md.view_offset.u64(),
            _ => None,
        },
        duration_ms: md.duration.u64(),
    };

    // DESIGN 3: Tautulli's added event has no user id. The template still prints an
    // `Account` (empty, or whoever Tautulli puts there), which is not a viewer.
    let user_id = match action {
        Action::Added => None,
        _ => payload
            .account
            .and_then(|a| a.id.text().map(Cow::into_owned)),
    };

    Ok(Parsed::Event(Event {
        source,
        server_id: payload
            .server
            .and_then(|s| s.uuid.text().map(Cow::into_owned)),
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

/// DESIGN 3: watched is played; play/start/pause/resume/stop are progress; created is
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

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    event: Loose<'a>,
    #[serde(borrow, default, rename = "Account")]
    account: Option<Account<'a>>,
    #[serde(borrow, default, rename = "Server")]
    server: Option<Server<'a>>,
    #[serde(borrow, default, rename = "Metadata")]
    metadata: Option<Metadata<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    #[serde(borrow, default)]
    rating_key: Loose<'a>,
    #[serde(borrow, default, rename = "type")]
    kind: Loose<'a>,
    #[serde(borrow, default)]
    guid: Loose<'a>,
    #[serde(borrow, default, rename = "Guids")]
    guids: ProviderIds<'a>,
    #[serde(borrow, default)]
    title: Loose<'a>,
    #[serde(borrow, default)]
    grandparent_title: Loose<'a>,
    #[serde(borrow, default)]
    year: Loose<'a>,
    #[serde(borrow, default)]
    index: Loose<'a>,
    #[serde(borrow, default)]
    parent_index: Loose<'a>,
    #[serde(borrow, default)]
    view_offset: Loose<'a>,
    #[serde(borrow, default)]
    duration: Loose<'a>,
}

/// `Metadata.Guids`: provider name to id, in the order written. Anything but an
/// object (null, an unfilled `"{guids}"`) reads as no ids.
#[derive(Default)]
struct ProviderIds<'a>(Vec<(Loose<'a>, Loose<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for ProviderIds<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProviderIdsVisitor(PhantomData))
    }
}

struct ProviderIdsVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ProviderIdsVisitor<'a> {
    type Value = ProviderIds<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of provider ids")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::with_capacity(4);
        while let Some(key) = map.next_key::<Loose<'a>>()? {
            let value: Loose<'a> = map.next_value()?;
            ids.push((key, value));
        }
        Ok(ProviderIds(ids))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ProviderIds::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(ProviderIds::default())
    }
}
