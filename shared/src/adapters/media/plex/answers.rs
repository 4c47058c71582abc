//! Plex's JSON answers to the client: read leniently into the shared borrowed
//! structs ([`super::dto`]), then kept as the owned values the client works with.

use serde::Deserialize;

use super::dto::{synced_type, Metadata};
use crate::adapters::media::lenient::Scalar;
use crate::adapters::media::plex::webhook::AgentIds;
use crate::domain::model::{Guids, ItemType};
use crate::domain::remote::RemoteItem;
use crate::domain::when;

pub(super) fn parse_container(body: &[u8]) -> Result<Container, serde_json::Error> {
    serde_json::from_slice::<RawDoc>(body).map(|d| d.container.unwrap_or_default().owned())
}

#[derive(Deserialize)]
pub(super) struct RawDoc<'a> {
    #[serde(rename = "MediaContainer", borrow, default)]
    pub(super) container: Option<RawContainer<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawContainer<'a> {
    #[serde(borrow, default)]
    pub(super) machine_identifier: Scalar<'a>,
    #[serde(borrow, default)]
    pub(super) friendly_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub(super) version: Scalar<'a>,
    #[serde(borrow, default)]
    pub(super) total_size: Scalar<'a>,
    #[serde(rename = "Metadata", borrow, default)]
    pub(super) metadata: Option<Vec<Metadata<'a>>>,
    #[serde(rename = "Directory", borrow, default)]
    pub(super) directories: Option<Vec<RawDirectory<'a>>>,
    #[serde(rename = "Hub", borrow, default)]
    pub(super) hubs: Option<Vec<RawHub<'a>>>,
}

#[derive(Deserialize)]
pub(super) struct RawDirectory<'a> {
    #[serde(borrow, default)]
    pub(super) key: Scalar<'a>,
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Scalar<'a>,
}

#[derive(Deserialize)]
pub(super) struct RawHub<'a> {
    #[serde(rename = "Metadata", borrow, default)]
    pub(super) metadata: Option<Vec<Metadata<'a>>>,
}

fn text(l: &Scalar<'_>) -> Option<String> {
    l.filled().map(|s| s.into_owned())
}

impl RawContainer<'_> {
    pub(super) fn owned(self) -> Container {
        let mut metadata: Vec<Meta> = self
            .metadata
            .unwrap_or_default()
            .iter()
            .map(Meta::from)
            .collect();
        for hub in self.hubs.unwrap_or_default() {
            metadata.extend(hub.metadata.unwrap_or_default().iter().map(Meta::from));
        }
        Container {
            machine_identifier: text(&self.machine_identifier),
            friendly_name: text(&self.friendly_name),
            version: text(&self.version),
            total_size: self.total_size.u64(),
            metadata,
            directories: self
                .directories
                .unwrap_or_default()
                .iter()
                .map(|d| (text(&d.key), text(&d.kind)))
                .collect(),
        }
    }
}

impl From<&Metadata<'_>> for Meta {
    fn from(m: &Metadata<'_>) -> Meta {
        Meta {
            rating_key: text(&m.rating_key),
            kind: text(&m.kind),
            title: text(&m.title),
            year: m.year.year(),
            // Legacy guid first, so `Guid[]` wins where both name a kind.
            guids: text(&m.guid)
                .into_iter()
                .chain(m.guid_list.iter().flatten().filter_map(|g| text(&g.id)))
                .collect(),
            has_guid_list: m.guid_list.is_some(),
            grandparent_title: text(&m.grandparent_title),
            grandparent_rating_key: text(&m.grandparent_rating_key),
            grandparent_guid: text(&m.grandparent_guid),
            index: m.index.u32(),
            parent_index: m.parent_index.u32(),
            view_count: m.view_count.u64(),
            view_offset: m.view_offset.u64(),
            last_viewed_at: m.last_viewed_at.i64(),
            duration: m.duration.u64(),
        }
    }
}

/// A `MediaContainer`, hubs flattened into `metadata`.
#[derive(Debug, Default)]
pub(super) struct Container {
    pub(super) machine_identifier: Option<String>,
    pub(super) friendly_name: Option<String>,
    pub(super) version: Option<String>,
    pub(super) total_size: Option<u64>,
    pub(super) metadata: Vec<Meta>,
    /// `(key, type)` of each `Directory`.
    pub(super) directories: Vec<(Option<String>, Option<String>)>,
}

/// One `Metadata` entry.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) rating_key: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) title: Option<String>,
    pub(super) year: Option<i32>,
    /// Raw agent guids: the legacy `guid`, then each `Guid[].id`.
    pub(super) guids: Vec<String>,
    /// Whether the entry had a `Guid` array (search hits may not).
    pub(super) has_guid_list: bool,
    pub(super) grandparent_title: Option<String>,
    pub(super) grandparent_rating_key: Option<String>,
    pub(super) grandparent_guid: Option<String>,
    pub(super) index: Option<u32>,
    pub(super) parent_index: Option<u32>,
    pub(super) view_count: Option<u64>,
    pub(super) view_offset: Option<u64>,
    pub(super) last_viewed_at: Option<i64>,
    pub(super) duration: Option<u64>,
}

impl Meta {
    pub(super) fn is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }

    /// A show's own ids (used as its episodes' series guids).
    pub(super) fn show_guids(&self) -> Guids {
        let mut ids = AgentIds::default();
        for g in &self.guids {
            ids.add_series_guid(g);
        }
        ids.series
    }

    /// The item, if it is a movie or an episode with a ratingKey. `show` is the show's
    /// guids when known.
    pub(super) fn remote(&self, show: Option<&Guids>) -> Option<RemoteItem> {
        let kind = synced_type(self.kind.as_deref()?)?;
        let id = self.rating_key.clone()?;
        let mut ids = AgentIds::default();
        for g in &self.guids {
            ids.add_item_guid(kind, g);
        }
        let episode = kind == ItemType::Episode;
        if episode {
            if let Some(g) = &self.grandparent_guid {
                ids.add_series_guid(g);
            }
            for (k, v) in show.into_iter().flatten() {
                ids.series.insert(k.clone(), v.clone());
            }
        }
        let only_episode = |v: Option<u32>| v.filter(|_| episode);
        Some(RemoteItem {
            id,
            kind,
            title: self.title.clone(),
            year: self.year,
            series_title: self.grandparent_title.clone().filter(|_| episode),
            season: only_episode(self.parent_index.or(ids.season)),
            episode: only_episode(self.index.or(ids.episode)),
            guids: ids.guids,
            series_guids: if episode { ids.series } else { Guids::new() },
            // Plex omits a zero viewCount.
            watched: self.view_count.unwrap_or(0) > 0,
            last_played_at: self.last_viewed_at.and_then(when::from_unix),
            play_count: Some(self.view_count.unwrap_or(0).min(u32::MAX as u64) as u32),
            progress_ms: self.view_offset.filter(|v| *v > 0),
            duration_ms: self.duration.filter(|v| *v > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client reads an item's type by the webhook parser's rule (`synced_type`):
    /// in any case, and nothing but movies and episodes.
    #[test]
    fn the_client_reads_types_as_the_webhook_does() {
        let c = parse_container(
            br#"{"MediaContainer":{"Metadata":[
                {"ratingKey":"1","type":"Movie"},{"ratingKey":"2","type":"EPISODE"},
                {"ratingKey":"3","type":"track"},{"ratingKey":"4"}]}}"#,
        )
        .unwrap();
        let kinds: Vec<_> = c
            .metadata
            .iter()
            .map(|m| m.remote(None).map(|r| (r.id, r.kind)))
            .collect();
        assert_eq!(
            kinds,
            [
                Some(("1".to_string(), ItemType::Movie)),
                Some(("2".to_string(), ItemType::Episode)),
                None,
                None
            ]
        );
    }
}
