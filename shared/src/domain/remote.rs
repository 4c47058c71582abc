//! An item as one backend's API describes it ([`RemoteItem`]), and whether it is a
//! stored item (the matching rule of [`crate::domain::sync::matching`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::model::{Guids, Item, ItemType};

/// An item as one backend's API describes it, with the backend user's play state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteItem {
    /// The backend's own id (Plex ratingKey, Jellyfin/Emby Id).
    pub id: String,
    pub kind: ItemType,
    pub title: Option<String>,
    pub year: Option<i32>,
    pub series_title: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    /// The item's own ids, normalized.
    pub guids: Guids,
    /// The show's ids, for episodes. Filled by `library_page` and `find`; `item` reads
    /// one item in one request and fills only what that answer carries (Plex legacy
    /// `grandparentGuid` and relative agent guids).
    pub series_guids: Guids,
    pub watched: bool,
    pub last_played_at: Option<DateTime<Utc>>,
    /// The backend's own play count, when it says (a completed play raises it).
    #[serde(default)]
    pub play_count: Option<u32>,
    /// Resume position; `None` when there is none (0).
    pub progress_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

impl RemoteItem {
    pub fn new(id: impl Into<String>, kind: ItemType) -> Self {
        RemoteItem {
            id: id.into(),
            kind,
            title: None,
            year: None,
            series_title: None,
            season: None,
            episode: None,
            guids: Guids::new(),
            series_guids: Guids::new(),
            watched: false,
            last_played_at: None,
            play_count: None,
            progress_ms: None,
            duration_ms: None,
        }
    }
}

/// Whether `candidate` is the stored `item` (the rule of `MediaClient::find`,
/// [`crate::domain::sync::matching::same_item`]): same type, no contradicting guid, and a
/// shared guid, or (episodes) a shared series guid with the same season and episode
/// numbers. Titles are never compared.
pub fn same_item(item: &Item, candidate: &RemoteItem) -> bool {
    crate::domain::sync::matching::same_item(item, candidate.identity())
}

impl RemoteItem {
    /// What identifies this entry, for matching.
    pub fn identity(&self) -> crate::domain::sync::matching::Identity<'_> {
        crate::domain::sync::matching::Identity {
            kind: self.kind,
            guids: &self.guids,
            series_guids: &self.series_guids,
            season: self.season,
            episode: self.episode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use crate::domain::guid::from_pairs as guids;

    fn stored(kind: ItemType) -> Item {
        let mut item = crate::domain::sync::test_support::item("i1", kind, &[], &[], None);
        item.title = Some("Title".into());
        item.state_updated_at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        item
    }

    #[test]
    fn movies_match_on_any_shared_guid_only() {
        let mut item = stored(ItemType::Movie);
        item.guids = guids(&[("imdb", "tt0111161"), ("tmdb", "278")]);
        let mut c = RemoteItem::new("9", ItemType::Movie);
        c.title = Some("Title".into());
        assert!(!same_item(&item, &c), "title alone never matches");
        c.guids = guids(&[("tmdb", "278")]);
        assert!(same_item(&item, &c));
        c.guids = guids(&[("tmdb", "279"), ("imdb", "tt0111162")]);
        assert!(!same_item(&item, &c));
        let mut ep = RemoteItem::new("9", ItemType::Episode);
        ep.guids = guids(&[("tmdb", "278")]);
        assert!(!same_item(&item, &ep), "types must agree");
    }

    #[test]
    fn episodes_match_on_own_guid_or_series_guid_plus_numbers() {
        let mut item = stored(ItemType::Episode);
        item.series_guids = guids(&[("tvdb", "268592")]);
        item.season = Some(1);
        item.episode = Some(2);
        let mut c = RemoteItem::new("91", ItemType::Episode);
        c.series_guids = guids(&[("tvdb", "268592")]);
        c.season = Some(1);
        c.episode = Some(2);
        assert!(same_item(&item, &c));
        c.episode = Some(3);
        assert!(!same_item(&item, &c));
        c.series_guids = guids(&[("tvdb", "1")]);
        c.episode = Some(2);
        assert!(!same_item(&item, &c));
        item.guids = guids(&[("imdb", "tt2")]);
        c.guids = guids(&[("imdb", "tt2")]);
        assert!(same_item(&item, &c), "own episode guid is enough");
        // Numbers without a series guid never match.
        let mut bare = stored(ItemType::Episode);
        bare.season = Some(1);
        bare.episode = Some(2);
        let mut c2 = RemoteItem::new("91", ItemType::Episode);
        c2.season = Some(1);
        c2.episode = Some(2);
        assert!(!same_item(&bare, &c2));
    }
}
