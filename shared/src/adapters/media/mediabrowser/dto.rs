//! The MediaBrowser family's item, `BaseItemDto`: the API answers with it, and Emby's
//! webhook sends it as `Item`. Read leniently ([`Scalar`]); other fields are skipped.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::adapters::media::lenient::Scalar;
use crate::domain::guid;
use crate::domain::model::Guids;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BaseItem<'a> {
    #[serde(borrow, default)]
    pub id: Scalar<'a>,
    #[serde(borrow, default)]
    pub server_id: Scalar<'a>,
    /// `Movie`, `Episode`, `Series`, ...
    #[serde(rename = "Type", borrow, default)]
    pub kind: Scalar<'a>,
    #[serde(borrow, default)]
    pub name: Scalar<'a>,
    #[serde(borrow, default)]
    pub production_year: Scalar<'a>,
    #[serde(borrow, default)]
    pub series_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub series_id: Scalar<'a>,
    /// The season's number.
    #[serde(borrow, default)]
    pub parent_index_number: Scalar<'a>,
    /// The episode's number.
    #[serde(borrow, default)]
    pub index_number: Scalar<'a>,
    #[serde(borrow, default)]
    pub run_time_ticks: Scalar<'a>,
    #[serde(default)]
    pub provider_ids: ProviderIds,
    #[serde(borrow, default)]
    pub user_data: Option<UserData<'a>>,
}

/// The user's state of an item.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UserData<'a> {
    #[serde(borrow, default)]
    pub played: Scalar<'a>,
    #[serde(borrow, default)]
    pub playback_position_ticks: Scalar<'a>,
    #[serde(borrow, default)]
    pub last_played_date: Scalar<'a>,
    #[serde(borrow, default)]
    pub play_count: Scalar<'a>,
}

/// `ProviderIds`: keys in any case (`Imdb`, `IMDB`, `Tmdb`), values checked by
/// [`guid::normalize`] so URLs (`Official Website`) and unknown providers stay out.
#[derive(Default)]
pub(crate) struct ProviderIds(pub Guids);

impl<'de> Deserialize<'de> for ProviderIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdsVisitor;
        impl<'de> Visitor<'de> for IdsVisitor {
            type Value = ProviderIds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of provider ids")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ProviderIds, E> {
                Ok(ProviderIds::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProviderIds, A::Error> {
                let mut guids = Guids::new();
                while let Some(key) = map.next_key::<Scalar>()? {
                    match key.text().and_then(|k| guid::kind_of(&k)) {
                        Some(kind) => {
                            if let Some(v) = map.next_value::<Scalar>()?.text() {
                                guid::insert(&mut guids, kind, &v);
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ProviderIds(guids))
            }
        }
        deserializer.deserialize_any(IdsVisitor)
    }
}
