//! Plex's JSON shapes, shared by the webhook parser, the Tautulli parser (Tautulli's
//! template is Plex-shaped) and the API client: borrowed structs whose values are read
//! leniently ([`Scalar`]); everything else in a document is skipped unread.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::adapters::media::lenient::Scalar;
use crate::domain::model::ItemType;

/// A `Metadata.type` that is synced, as its item type: `movie` and `episode`, in any
/// case (Tautulli's templates are typed by hand). The webhook parser and the API
/// client both read types through this.
pub(crate) fn synced_type(kind: &str) -> Option<ItemType> {
    if kind.eq_ignore_ascii_case("movie") {
        Some(ItemType::Movie)
    } else if kind.eq_ignore_ascii_case("episode") {
        Some(ItemType::Episode)
    } else {
        None
    }
}

/// A webhook: Plex's, or Tautulli's template of it.
#[derive(Deserialize)]
pub(crate) struct Payload<'a> {
    #[serde(borrow, default)]
    pub event: Scalar<'a>,
    #[serde(borrow, default, rename = "Account")]
    pub account: Option<Account<'a>>,
    #[serde(borrow, default, rename = "Server")]
    pub server: Option<Server<'a>>,
    #[serde(borrow, default, rename = "Metadata")]
    pub metadata: Option<Metadata<'a>>,
}

impl Payload<'_> {
    /// `Server.uuid`, when filled.
    pub fn server_id(&self) -> Option<String> {
        let server = self.server.as_ref()?;
        server.uuid.filled().map(Cow::into_owned)
    }

    /// `Account.id`, when filled.
    pub fn account_id(&self) -> Option<String> {
        let account = self.account.as_ref()?;
        account.id.filled().map(Cow::into_owned)
    }
}

/// `Account` of a payload: `id` is a number in Plex, a string in Tautulli.
#[derive(Deserialize)]
pub(crate) struct Account<'a> {
    #[serde(borrow, default)]
    pub id: Scalar<'a>,
}

/// `Server` of a payload.
#[derive(Deserialize)]
pub(crate) struct Server<'a> {
    #[serde(borrow, default)]
    pub uuid: Scalar<'a>,
}

/// One `Metadata` entry: of a webhook, of Tautulli's template, or of an API answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Metadata<'a> {
    #[serde(borrow, default)]
    pub rating_key: Scalar<'a>,
    #[serde(borrow, default, rename = "type")]
    pub kind: Scalar<'a>,
    #[serde(borrow, default)]
    pub library_section_type: Scalar<'a>,
    #[serde(borrow, default)]
    pub guid: Scalar<'a>,
    #[serde(borrow, default, rename = "Guid")]
    pub guid_list: Option<Vec<GuidEntry<'a>>>,
    /// Tautulli's `Guids` (`{imdb, tvdb, tmdb, tvmaze}`); Plex has none.
    #[serde(borrow, default, rename = "Guids")]
    pub provider_ids: ProviderIds<'a>,
    #[serde(borrow, default)]
    pub title: Scalar<'a>,
    #[serde(borrow, default)]
    pub grandparent_title: Scalar<'a>,
    #[serde(borrow, default)]
    pub grandparent_rating_key: Scalar<'a>,
    #[serde(borrow, default)]
    pub grandparent_guid: Scalar<'a>,
    #[serde(borrow, default)]
    pub year: Scalar<'a>,
    #[serde(borrow, default)]
    pub index: Scalar<'a>,
    #[serde(borrow, default)]
    pub parent_index: Scalar<'a>,
    #[serde(borrow, default)]
    pub view_count: Scalar<'a>,
    #[serde(borrow, default)]
    pub view_offset: Scalar<'a>,
    #[serde(borrow, default)]
    pub last_viewed_at: Scalar<'a>,
    #[serde(borrow, default)]
    pub duration: Scalar<'a>,
}

/// One element of `Metadata.Guid[]`: `{"id": "imdb://tt0090728"}`.
#[derive(Deserialize)]
pub(crate) struct GuidEntry<'a> {
    #[serde(borrow, default)]
    pub id: Scalar<'a>,
}

/// Tautulli's `Metadata.Guids`: provider name to id, in the order written. Anything
/// but an object (null, an unfilled `"{guids}"`) reads as no ids.
#[derive(Default)]
pub(crate) struct ProviderIds<'a>(pub Vec<(Scalar<'a>, Scalar<'a>)>);

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
        while let Some(key) = map.next_key::<Scalar<'a>>()? {
            let value: Scalar<'a> = map.next_value()?;
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
