//! What the rule tests share: a fixed clock, a bare stored item and a bare event item,
//! so each test module states only what its rule looks at.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::guid::from_pairs;
use crate::domain::model::{EventItem, Item, ItemType};
use crate::domain::sync::{new_item, Meta};

/// The tests' "now", in seconds since the epoch.
pub(crate) const NOW: i64 = 1_750_000_000;

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap()
}

/// A stored item with no play state yet, known only by the given ids (and, for
/// episodes, season and episode numbers).
pub(crate) fn item(
    id: &str,
    kind: ItemType,
    own: &[(&str, &str)],
    series: &[(&str, &str)],
    season_episode: Option<(u32, u32)>,
) -> Item {
    let (guids, series_guids) = (from_pairs(own), from_pairs(series));
    new_item(
        id.into(),
        kind,
        Meta {
            guids: &guids,
            series_guids: &series_guids,
            title: None,
            year: None,
            series_title: None,
            season: season_episode.map(|x| x.0),
            episode: season_episode.map(|x| x.1),
        },
    )
}

/// The movie a webhook is about: Plex item 42, IMDb tt0111161.
pub(crate) fn ev_item() -> EventItem {
    EventItem {
        kind: Some(ItemType::Movie),
        backend_item_id: "42".into(),
        guids: from_pairs(&[("imdb", "tt0111161")]),
        ..Default::default()
    }
}
