//! The JSON answers of the MediaBrowser API: read leniently ([`Scalar`]) into borrowed
//! structs, then kept as owned [`Entry`] values.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::dto::BaseItem;
use super::TICKS_PER_MS;
use crate::adapters::media::lenient::Scalar;
use crate::domain::model::{Guids, ItemType};
use crate::domain::remote::RemoteItem;
use crate::domain::when;

#[derive(Deserialize)]
pub(super) struct RawInfo {
    #[serde(rename = "Id")]
    pub(super) id: Option<String>,
    #[serde(rename = "ServerName")]
    pub(super) server_name: Option<String>,
    #[serde(rename = "Version")]
    pub(super) version: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawListing<'a> {
    #[serde(rename = "Items", borrow, default)]
    pub(super) items: Option<Vec<BaseItem<'a>>>,
    #[serde(rename = "TotalRecordCount", borrow, default)]
    pub(super) total: Scalar<'a>,
}

pub(super) struct Listing {
    pub(super) items: Vec<Entry>,
    pub(super) total: Option<u64>,
}

/// One item of an answer: a movie, an episode, a series or anything else.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    /// `Type` as the server wrote it (`Movie`, `Episode`, `Series`, ...).
    pub kind: Option<String>,
    pub name: Option<String>,
    pub year: Option<i32>,
    pub series_name: Option<String>,
    pub series_id: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    pub runtime_ticks: Option<u64>,
    pub guids: Guids,
    pub played: bool,
    pub position_ticks: Option<u64>,
    pub last_played: Option<DateTime<Utc>>,
    pub play_count: Option<u32>,
}

impl From<&BaseItem<'_>> for Entry {
    fn from(raw: &BaseItem<'_>) -> Self {
        let user_data = raw.user_data.as_ref();
        Entry {
            id: raw.id.string().unwrap_or_default(),
            kind: raw.kind.string(),
            name: raw.name.string(),
            year: raw.production_year.year(),
            series_name: raw.series_name.string(),
            series_id: raw.series_id.string(),
            season: raw.parent_index_number.u32(),
            episode: raw.index_number.u32(),
            runtime_ticks: raw.run_time_ticks.u64(),
            guids: raw.provider_ids.0.clone(),
            played: user_data.and_then(|u| u.played.flag()).unwrap_or(false),
            position_ticks: user_data.and_then(|u| u.playback_position_ticks.u64()),
            // `0001-01-01T00:00:00Z` means never.
            last_played: user_data
                .and_then(|u| u.last_played_date.string())
                .and_then(|t| when::from_rfc3339(&t))
                .filter(|t| *t >= when::year_2000()),
            play_count: user_data.and_then(|u| u.play_count.u32()),
        }
    }
}

impl Entry {
    pub(crate) fn is(&self, kind: &str) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(kind))
    }

    /// The item, if it is a movie or an episode with an id; `series` is its series'
    /// guids when known.
    pub(crate) fn remote(&self, series: Option<&Guids>) -> Option<RemoteItem> {
        let kind = if self.is("Movie") {
            ItemType::Movie
        } else if self.is("Episode") {
            ItemType::Episode
        } else {
            return None;
        };
        if self.id.is_empty() {
            return None;
        }
        let episode = kind == ItemType::Episode;
        Some(RemoteItem {
            id: self.id.clone(),
            kind,
            title: self.name.clone(),
            year: self.year,
            series_title: self.series_name.clone().filter(|_| episode),
            season: self.season.filter(|_| episode),
            episode: self.episode.filter(|_| episode),
            guids: self.guids.clone(),
            series_guids: series.filter(|_| episode).cloned().unwrap_or_default(),
            watched: self.played,
            last_played_at: self.last_played,
            play_count: self.play_count,
            progress_ms: self
                .position_ticks
                .map(|t| t / TICKS_PER_MS)
                .filter(|ms| *ms > 0),
            duration_ms: self
                .runtime_ticks
                .map(|t| t / TICKS_PER_MS)
                .filter(|ms| *ms > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_with_user_data() {
        let json =
            br#"{"Name":"Signal Fire","Id":"d4092836b8a1db8e10d3e21f231ba38d","Type":"Episode",
            "SeriesName":"Ninefold Orbit","SeriesId":"5a9a","ParentIndexNumber":1,"IndexNumber":3,
            "RunTimeTicks":14403130000,"ProductionYear":2022,
            "ProviderIds":{"Tvdb":"8123","Imdb":"tt123","Official Website":"http://x"},
            "UserData":{"PlaybackPositionTicks":6000000000,"PlayCount":0,"Played":false,
            "LastPlayedDate":"2025-09-02T19:38:51.4029186Z"}}"#;
        let raw: BaseItem = serde_json::from_slice(json).unwrap();
        let r = Entry::from(&raw).remote(None).unwrap();
        assert_eq!(r.kind, ItemType::Episode);
        assert_eq!((r.season, r.episode), (Some(1), Some(3)));
        assert_eq!(r.series_title.as_deref(), Some("Ninefold Orbit"));
        assert_eq!(r.guids.len(), 2);
        assert_eq!(r.guids.get("imdb").map(String::as_str), Some("tt123"));
        assert!(!r.watched);
        assert_eq!(r.progress_ms, Some(600_000));
        assert_eq!(r.duration_ms, Some(1_440_313));
        assert!(r.last_played_at.is_some());
    }

    #[test]
    fn never_played_and_other_types() {
        let json = br#"{"Items":[{"Id":"1","Type":"Movie","Name":"M","UserData":{"Played":true,
            "LastPlayedDate":"0001-01-01T00:00:00.0000000Z"}},{"Id":"2","Type":"Series","ProviderIds":{"TVDB":"5"}},
            {"Id":"3","Type":"Audio"}],"TotalRecordCount":3,"StartIndex":0}"#;
        let raw: RawListing = serde_json::from_slice(json).unwrap();
        let entries: Vec<Entry> = raw.items.unwrap().iter().map(Entry::from).collect();
        let movie = entries[0].remote(None).unwrap();
        assert!(movie.watched);
        assert_eq!(movie.last_played_at, None);
        assert!(entries[1].remote(None).is_none());
        assert_eq!(entries[1].guids.get("tvdb").map(String::as_str), Some("5"));
        assert!(entries[2].remote(None).is_none());
        assert_eq!(raw.total.u64(), Some(3));
    }
}
