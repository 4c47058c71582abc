//! `/v1/users/{u}/items`: the stored items, by id, guid or listing, and a person's
//! mark played/unplayed from the console.

#[allow(unused_imports)]
use super::*;

/// Lookup keys for `?guid=`: `imdb:tt0111161` (movie or episode) or a relative
/// episode guid `tvdb:431877/1/6`.
pub(super) fn guid_query_keys(g: &str) -> Option<Vec<String>> {
    if let Some((id, rest)) = g.split_once('/') {
        let (kind, series) = guid::parse_written(id)?;
        let mut nums = rest.split('/').map(|n| n.parse::<u32>().ok());
        let (Some(Some(s)), Some(Some(e)), None) = (nums.next(), nums.next(), nums.next()) else {
            return None;
        };
        return Some(vec![sync::LookupKey::relative(kind, &series, s, e).encode()]);
    }
    let (kind, value) = guid::parse_written(g)?;
    Some(vec![
        sync::guid_key(ItemType::Movie, kind, &value),
        sync::guid_key(ItemType::Episode, kind, &value),
    ])
}

/// An item as the api shows it (`tests/tests/http_contract.rs` holds the contract).
pub fn item_view(i: &Item) -> Value {
    let backends: serde_json::Map<String, Value> = i
        .backends
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                json!({"item_id": s.item_id, "watched": s.watched, "progress_ms": s.progress_ms}),
            )
        })
        .collect();
    json!({
        "id": i.id,
        "type": i.kind,
        "title": i.title,
        "year": i.year,
        "series_title": i.series_title,
        "season": i.season,
        "episode": i.episode,
        "guids": i.guids,
        "series_guids": i.series_guids,
        "watched": i.watched,
        "state_updated_at": i.state_updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "progress_ms": i.progress_ms,
        "via": i.via,
        "backends": backends,
    })
}

impl ApiService {
    pub(super) async fn items(&self, user: &str, q: &[(String, String)]) -> ApiResult {
        self.require_user(user).await?;
        let limit = match query_get(q, "limit") {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| bad_request("limit must be a number from 1 to 1000"))?,
            None => 100,
        };
        let cursor = query_get(q, "cursor");
        let query = match (
            query_get(q, "guid"),
            query_get(q, "backend"),
            query_get(q, "backend_item_id"),
        ) {
            (Some(g), None, None) => ItemQuery::Keys(guid_query_keys(g).ok_or_else(|| {
                bad_request(format!(
                    "guid '{g}' is not kind:value (or kind:series/season/episode) with a known kind (imdb, tmdb, tvdb, tvmaze, tvrage, anidb) and a valid id"
                ))
            })?),
            (None, Some(b), Some(id)) => ItemQuery::Keys(vec![sync::backend_key(b, id)]),
            (None, None, None) => ItemQuery::All,
            _ => {
                return Err(bad_request(
                    "filter by either guid=kind:value or backend=..&backend_item_id=..",
                ))
            }
        };
        let page = self
            .store
            .list_items(user, &query, limit, cursor)
            .await
            .map_err(store_err)?;
        let items: Vec<Value> = page.items.iter().map(item_view).collect();
        Ok(json_reply(
            StatusCode::OK,
            &json!({"items": items, "cursor": page.cursor}),
        ))
    }

    pub(super) async fn item(&self, user: &str, id: &str) -> ApiResult {
        match self.store.get_item(user, id).await.map_err(store_err)? {
            Some(i) => Ok(json_reply(StatusCode::OK, &item_view(&i))),
            None => Err(not_found(format!("no item '{id}' for user '{user}'"))),
        }
    }

    /// A person's "Mark played" / "Mark unplayed": stored like any change (its stamp is
    /// now), then pushed to every backend through the bus.
    pub(super) async fn mark(&self, user: &str, id: &str, watched: bool) -> ApiResult {
        self.require_user(user).await?;
        let Some(applied) =
            crate::app::ingest::mark(self.store.as_ref(), user, id, watched, Utc::now())
                .await
                .map_err(store_err)?
        else {
            return Err(not_found(format!("no item '{id}' for user '{user}'")));
        };
        let pushed = match (&applied.change, &self.bus) {
            (Some(change), Some(bus)) => {
                crate::app::outbox::publish_and_ack(self.store.as_ref(), bus.as_ref(), change).await
            }
            _ => false,
        };
        // Push recorded what it learned on the item: show the item as it is now.
        let item = match self.store.get_item(user, id).await {
            Ok(Some(i)) => i,
            _ => applied.item,
        };
        let mut body = json!({
            "item": item_view(&item),
            "changed": applied.no_change.is_none(),
            "pushed": pushed,
        });
        if let Some(r) = applied.no_change {
            body["reason"] = json!(r.as_str());
        }
        if let Some(d) = applied.detail {
            body["detail"] = json!(d);
        }
        Ok(json_reply(StatusCode::OK, &body))
    }
}
