//! Lookup keys: how a report finds its stored item (docs/RELIABILITY.md, "The rules, one place": Matching). One type,
//! [`LookupKey`], encoded and decoded here only; the store keeps the encoded form.
//!
//! - `B#{backend}#{item id}`: a backend's own id of the item (strongest);
//! - `G#{movie|episode}#{kind}:{value}`: one of the item's own guids, scoped by type
//!   (a TMDB or TVDB movie id can equal an episode id);
//! - `R#{kind}:{series}/{season}/{episode}`: an episode by its show's guid and numbers.

use std::collections::BTreeSet;
use std::fmt;

use crate::domain::guid;
use crate::domain::model::{EventItem, Guids, Item, ItemType};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupKey {
    /// A backend's own item id.
    Backend { backend: String, item_id: String },
    /// One of the item's own guids (`imdb:tt0111161`).
    Guid { kind: ItemType, guid: String },
    /// An episode by its show's guid, season and episode (`tvdb:81797/22/70`).
    Relative { guid: String },
}

impl LookupKey {
    pub fn backend(backend: &str, item_id: &str) -> Self {
        LookupKey::Backend {
            backend: backend.to_string(),
            item_id: item_id.to_string(),
        }
    }

    pub fn guid(kind: ItemType, guid_kind: &str, value: &str) -> Self {
        LookupKey::Guid {
            kind,
            guid: format!("{guid_kind}:{value}"),
        }
    }

    pub fn relative(guid_kind: &str, series: &str, season: u32, episode: u32) -> Self {
        LookupKey::Relative {
            guid: guid::relative(guid_kind, series, season, episode),
        }
    }

    /// The form the store keeps.
    pub fn encode(&self) -> String {
        self.to_string()
    }

    /// The key an encoded form stands for (`None`: not a lookup key).
    pub fn decode(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix("B#") {
            let (backend, item_id) = rest.split_once('#')?;
            return Some(LookupKey::backend(backend, item_id));
        }
        if let Some(rest) = s.strip_prefix("G#") {
            let (kind, guid) = rest.split_once('#')?;
            let kind = match kind {
                "movie" => ItemType::Movie,
                "episode" => ItemType::Episode,
                _ => return None,
            };
            return Some(LookupKey::Guid {
                kind,
                guid: guid.to_string(),
            });
        }
        s.strip_prefix("R#").map(|guid| LookupKey::Relative {
            guid: guid.to_string(),
        })
    }

    pub fn is_backend(&self) -> bool {
        matches!(self, LookupKey::Backend { .. })
    }
}

impl fmt::Display for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupKey::Backend { backend, item_id } => write!(f, "B#{backend}#{item_id}"),
            LookupKey::Guid { kind, guid } => write!(f, "G#{}#{guid}", kind.as_str()),
            LookupKey::Relative { guid } => write!(f, "R#{guid}"),
        }
    }
}

/// Lookup keys of an event's item, strongest first: the backend's own id, then each
/// guid, then relative episode guids (encoded, as the store takes them).
pub fn event_keys(backend: &str, item: &EventItem) -> Vec<String> {
    let kind = item.item_type();
    let mut keys = vec![backend_key(backend, &item.backend_item_id)];
    keys.extend(guid_keys(kind, &item.guids));
    keys.extend(relative_keys(
        kind,
        &item.series_guids,
        item.season,
        item.episode,
    ));
    keys
}

/// Every lookup key a stored item owns (encoded).
pub fn item_keys(item: &Item) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (name, state) in &item.backends {
        if let Some(id) = &state.item_id {
            keys.insert(backend_key(name, id));
        }
    }
    keys.extend(guid_keys(item.kind, &item.guids));
    keys.extend(relative_keys(
        item.kind,
        &item.series_guids,
        item.season,
        item.episode,
    ));
    keys
}

pub fn backend_key(backend: &str, backend_item_id: &str) -> String {
    LookupKey::backend(backend, backend_item_id).encode()
}

pub fn guid_key(kind: ItemType, guid_kind: &str, value: &str) -> String {
    LookupKey::guid(kind, guid_kind, value).encode()
}

fn guid_keys(kind: ItemType, guids: &Guids) -> impl Iterator<Item = String> + '_ {
    guids.iter().map(move |(k, v)| guid_key(kind, k, v))
}

fn relative_keys(
    kind: ItemType,
    series: &Guids,
    season: Option<u32>,
    episode: Option<u32>,
) -> Vec<String> {
    match (kind, season, episode) {
        (ItemType::Episode, Some(s), Some(e)) => series
            .iter()
            .map(|(k, v)| LookupKey::relative(k, v, s, e).encode())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sync::test_support::ev_item;

    #[test]
    fn keys_are_typed_and_relative_for_episodes() {
        let mut ev = ev_item();
        assert_eq!(
            event_keys("plex", &ev),
            vec![
                "B#plex#42".to_string(),
                "G#movie#imdb:tt0111161".to_string()
            ]
        );
        ev.kind = Some(ItemType::Episode);
        ev.guids.clear();
        ev.series_guids.insert("tvdb".into(), "81797".into());
        ev.season = Some(22);
        ev.episode = Some(70);
        assert_eq!(
            event_keys("plex", &ev),
            vec!["B#plex#42".to_string(), "R#tvdb:81797/22/70".to_string()]
        );
    }

    #[test]
    fn keys_round_trip() {
        for k in [
            LookupKey::backend("plex", "42#x"),
            LookupKey::guid(ItemType::Episode, "tvdb", "349232"),
            LookupKey::relative("tvdb", "81797", 22, 70),
        ] {
            assert_eq!(LookupKey::decode(&k.encode()), Some(k.clone()), "{k}");
        }
        assert!(LookupKey::decode("B#plex#1").unwrap().is_backend());
        assert_eq!(LookupKey::decode("X#1"), None);
        assert_eq!(LookupKey::decode("G#show#imdb:tt1"), None);
    }
}
