//! The fake Emby server: Jellyfin's routes ([`super::jellyfin`]) with Emby's
//! differences, which are all here: the token in `X-Emby-Token` (or `api_key`, or an
//! `X-Emby-Authorization` MediaBrowser header), `DatePlayed` as `yyyyMMddHHmmss`,
//! `AnyProviderIdEquals=imdb.tt0111161` filtering (comma-separated, any case), and the
//! `item.markplayed`/`item.markunplayed` webhooks (JSON, as Emby 4.9 sends them).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use super::jellyfin::{item_json, mediabrowser_token, ticks_time};
use super::{now, Call, FakeItem, Outgoing, State};

pub(crate) fn token(req: &Call) -> Option<&str> {
    req.header("x-emby-token")
        .or_else(|| req.qi("api_key"))
        .or_else(|| {
            req.header("x-emby-authorization")
                .and_then(mediabrowser_token)
        })
}

/// Emby's `DatePlayed`: `yyyyMMddHHmmss`, UTC.
pub(crate) fn parse_date_played(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw.trim(), "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// `AnyProviderIdEquals`: any `kind.value` of the list names one of the item's ids.
pub(crate) fn provider_filter_matches(item: &FakeItem, filter: &str) -> bool {
    filter.split(',').any(|pair| {
        let Some((k, v)) = pair.trim().split_once('.') else {
            return false;
        };
        item.guids
            .iter()
            .any(|(gk, gv)| gk.eq_ignore_ascii_case(k) && gv.eq_ignore_ascii_case(v))
    })
}

/// `item.markplayed` / `item.markunplayed` as Emby's webhooks send them.
pub(crate) fn echo(st: &State, user: &str, item: &FakeItem, played: bool) -> Outgoing {
    let event = if played {
        "item.markplayed"
    } else {
        "item.markunplayed"
    };
    let at = now();
    let body = json!({
        "Title": format!("{user} marked {} as {}", item.title, if played { "played" } else { "unplayed" }),
        "Description": at.format("%A, %-d %B %Y %H:%M").to_string(),
        "Date": ticks_time(at),
        "Event": event,
        "User": {"Name": user, "Id": user},
        "Item": item_json(st, Some(user), item, true, true),
        "Server": {"Name": st.server_name, "Id": st.server_id, "Version": st.version},
    });
    Outgoing {
        event: event.into(),
        item_id: item.id.clone(),
        content_type: "application/json".into(),
        user_agent: "Emby Server/4.8.11.0",
        body: body.to_string().into_bytes(),
    }
}

/// `playback.pause` / `playback.stop` as Emby's webhooks send them: the item with the
/// user's play state, and `PlaybackInfo` with the position and whether it finished.
pub(crate) fn playback(
    st: &State,
    user: &str,
    item: &FakeItem,
    event: &str,
    completed: bool,
    position_ms: u64,
) -> Outgoing {
    let at = now();
    let verb = match event {
        "playback.pause" => "paused",
        _ => "finished playing",
    };
    let body = json!({
        "Title": format!("{user} has {verb} {} on Emby Web", item.title),
        "Date": ticks_time(at),
        "Event": event,
        "User": {"Name": user, "Id": user},
        "Item": item_json(st, Some(user), item, true, true),
        "Server": {"Name": st.server_name, "Id": st.server_id, "Version": st.version},
        "Session": {"RemoteEndPoint": "127.0.0.1", "Client": "Emby Web", "DeviceName": "Firefox", "Id": "fae88f772d354812f128b37ad9a5ee75"},
        "PlaybackInfo": {
            "PlayedToCompletion": completed,
            "PositionTicks": position_ms * super::jellyfin::TICKS,
            "PlaylistIndex": 0,
            "PlaylistLength": 1,
        },
    });
    Outgoing {
        event: event.into(),
        item_id: item.id.clone(),
        content_type: "application/json".into(),
        user_agent: "Emby Server/4.8.11.0",
        body: body.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_played_and_provider_filter() {
        let t = parse_date_played("20250315203841").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-15T20:38:41+00:00");
        assert!(parse_date_played("2025-03-15T20:38:41Z").is_none());
        let item = FakeItem::movie("1", "M", 2000).guid("imdb", "tt0111161");
        assert!(provider_filter_matches(&item, "IMDB.tt0111161"));
        assert!(provider_filter_matches(&item, "tmdb.1,imdb.tt0111161"));
        assert!(!provider_filter_matches(&item, "imdb.tt0111162"));
    }
}
