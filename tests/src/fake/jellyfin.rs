//! The fake Jellyfin server, and the routes Emby shares with it (Emby's differences are
//! in [`super::emby`]). Answers in the shapes of `tests/fixtures/api/jellyfin/`:
//! PascalCase `BaseItemDto`s, `{"Items": [..], "TotalRecordCount": n, "StartIndex": n}`
//! listings, `UserData` with ticks (10,000 per ms), `ProviderIds` (`Imdb`, `Tmdb`,
//! `Tvdb`) only when `Fields` asks for them on listings, as the servers do.
//!
//! Routes: `GET /System/Info`; `GET /Users` (a bare array of `UserDto`); `GET /Users/{user}/Items` (filters `IncludeItemTypes`,
//! `searchTerm`, `Ids`, Emby's `AnyProviderIdEquals`; paging `StartIndex`/`Limit`);
//! `GET /Users/{user}/Items/{id}`; `POST|DELETE /Users/{user}/PlayedItems/{id}`
//! (`DatePlayed`: RFC 3339 on Jellyfin, `yyyyMMddHHmmss` on Emby, 400 otherwise);
//! `POST /Users/{user}/Items/{id}/UserData` (JSON body); `GET /Shows/{id}/Episodes`
//! (`season`, `UserId`). Query names are matched in any case, like the servers do.
//! Auth (Jellyfin): `Authorization`/`X-Emby-Authorization: MediaBrowser Token="..."`,
//! `X-Emby-Token`, or `api_key`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use watchstate::domain::model::BackendKind;

use super::{emby, now, Call, FakeItem, Kind, Outgoing, PlayState, Reply, Req, State};

const TICKS_PER_MS: u64 = 10_000;

pub(crate) fn route(st: &mut State, req: &Req) -> Reply {
    let token = match st.kind {
        BackendKind::Emby => emby::token(req),
        _ => token(req),
    };
    if st.user_of(token).is_none() {
        return Reply::unauthorized();
    }
    let mut segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    // Emby also serves its API under `/emby`.
    if st.kind == BackendKind::Emby && segs.first().is_some_and(|s| s.eq_ignore_ascii_case("emby"))
    {
        segs.remove(0);
    }
    let method = req.method.as_str();
    match (method, segs.as_slice()) {
        ("GET", ["System", "Info"]) => Reply::json(json!({
            "Id": st.server_id,
            "ServerName": st.server_name,
            "Version": st.version,
            "ProductName": match st.kind { BackendKind::Emby => "Emby Server", _ => "Jellyfin Server" },
            "OperatingSystem": "Linux",
            "LocalAddress": "http://127.0.0.1:8096",
            "StartupWizardCompleted": true,
        })),
        ("GET", ["Users"]) => users(st),
        (_, ["Users", user, rest @ ..]) => {
            if !st.users.iter().any(|u| u == user) {
                return Reply::status(404, "User not found");
            }
            let user = user.to_string();
            match (method, rest) {
                ("GET", ["Items"]) => list(st, &user, req),
                ("GET", ["Items", id]) => match st.catalogue.get(id) {
                    Some(item) => Reply::json(item_json(st, Some(&user), item, true, true)),
                    None => Reply::not_found(),
                },
                ("POST", ["PlayedItems", id]) => played(st, &user, req, id),
                ("DELETE", ["PlayedItems", id]) => unplayed(st, &user, id),
                ("POST", ["PlayedItems", id, "Delete"]) if st.kind == BackendKind::Emby => {
                    unplayed(st, &user, id)
                }
                ("POST", ["Items", id, "UserData"]) => user_data(st, &user, req, id),
                _ => Reply::not_found(),
            }
        }
        ("GET", ["Shows", id, "Episodes"]) => episodes(st, req, id),
        _ => Reply::not_found(),
    }
}

/// Jellyfin's token: the `Token="..."` of a MediaBrowser authorization header, else
/// `X-Emby-Token`, else `api_key`.
fn token(req: &Call) -> Option<&str> {
    req.header("authorization")
        .or_else(|| req.header("x-emby-authorization"))
        .and_then(mediabrowser_token)
        .or_else(|| req.header("x-emby-token"))
        .or_else(|| req.qi("api_key"))
}

/// `MediaBrowser Client="..", Token="abc"` -> `abc`.
pub(crate) fn mediabrowser_token(header: &str) -> Option<&str> {
    let rest = header.trim().strip_prefix("MediaBrowser")?;
    rest.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("Token")
            .then(|| v.trim().trim_matches('"'))
    })
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Movie => "Movie",
        Kind::Series => "Series",
        Kind::Episode => "Episode",
    }
}

/// `ProviderIds` key of a normalized kind.
fn provider_key(kind: &str) -> String {
    match kind {
        "imdb" => "Imdb".into(),
        "tmdb" => "Tmdb".into(),
        "tvdb" => "Tvdb".into(),
        "tvmaze" => "TvMaze".into(),
        "tvrage" => "TvRage".into(),
        "anidb" => "AniDB".into(),
        other => other.to_string(),
    }
}

/// Times as the servers write them: seven fraction digits, `Z`.
pub(crate) fn ticks_time(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

fn wants_field(req: &Call, field: &str) -> bool {
    req.qi("Fields")
        .is_some_and(|f| f.split(',').any(|x| x.trim().eq_ignore_ascii_case(field)))
}

fn user_data_json(item: &FakeItem, s: &PlayState) -> Value {
    let mut d = json!({
        "PlaybackPositionTicks": s.position_ms * TICKS_PER_MS,
        "PlayCount": s.play_count,
        "IsFavorite": false,
        "Played": s.played,
        "Key": item.id,
        "ItemId": item.id,
    });
    if let Some(t) = s.last_played {
        d["LastPlayedDate"] = json!(ticks_time(t));
    }
    d
}

/// A `BaseItemDto`. `user`: include that user's `UserData`. `all_fields`: a single
/// item answer (every field); listings carry `ProviderIds`, `Path`, `DateCreated` only
/// when asked (`fields`).
pub(crate) fn item_json(
    st: &State,
    user: Option<&str>,
    item: &FakeItem,
    provider_ids: bool,
    all_fields: bool,
) -> Value {
    let mut v = json!({
        "Name": item.title,
        "ServerId": st.server_id,
        "Id": item.id,
        "Type": type_name(item.kind),
        "IsFolder": item.kind == Kind::Series,
        "LocationType": "FileSystem",
        "ImageTags": {"Primary": "5073981ae3cc7c0c7f9be70391ac5aa4"},
        "BackdropImageTags": [],
    });
    let o = v.as_object_mut().expect("object");
    if item.kind != Kind::Series {
        o.insert("MediaType".into(), json!("Video"));
    }
    if let Some(y) = item.year {
        o.insert("ProductionYear".into(), json!(y));
    }
    if let Some(d) = item.duration_ms {
        o.insert("RunTimeTicks".into(), json!(d * TICKS_PER_MS));
    }
    if all_fields {
        o.insert("DateCreated".into(), json!("2024-01-02T03:04:05.0000000Z"));
        o.insert(
            "Path".into(),
            json!(format!("/media/{}/{}.mkv", type_name(item.kind), item.id)),
        );
    }
    if provider_ids || all_fields {
        let ids: serde_json::Map<String, Value> = item
            .guids
            .iter()
            .map(|(k, val)| (provider_key(k), json!(val)))
            .collect();
        o.insert("ProviderIds".into(), Value::Object(ids));
    }
    if item.kind == Kind::Episode {
        o.insert("SeriesName".into(), json!(item.series_title));
        o.insert("SeriesId".into(), json!(item.series_id));
        o.insert(
            "SeasonId".into(),
            json!(format!(
                "{}-s{}",
                item.series_id.as_deref().unwrap_or(""),
                item.season.unwrap_or(0)
            )),
        );
        o.insert(
            "SeasonName".into(),
            json!(format!("Season {}", item.season.unwrap_or(0))),
        );
        o.insert("ParentIndexNumber".into(), json!(item.season));
        o.insert("IndexNumber".into(), json!(item.episode));
    }
    if let Some(user) = user {
        let data = if item.kind == Kind::Series {
            let eps = st.catalogue.episodes_of(&item.id);
            let unplayed = eps
                .iter()
                .filter(|e| !st.catalogue.state(user, &e.id).is_some_and(|s| s.played))
                .count();
            json!({
                "UnplayedItemCount": unplayed,
                "PlaybackPositionTicks": 0,
                "PlayCount": 0,
                "IsFavorite": false,
                "Played": !eps.is_empty() && unplayed == 0,
                "Key": item.id,
            })
        } else {
            let s = st
                .catalogue
                .state(user, &item.id)
                .cloned()
                .unwrap_or_default();
            user_data_json(item, &s)
        };
        o.insert("UserData".into(), data);
    }
    v
}

fn listing(items: Vec<Value>, total: usize, start: usize) -> Reply {
    Reply::json(json!({
        "Items": items,
        "TotalRecordCount": total,
        "StartIndex": start,
    }))
}

fn list(st: &State, user: &str, req: &Req) -> Reply {
    let types: Option<Vec<String>> = req.qi("IncludeItemTypes").map(|t| {
        t.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .collect()
    });
    let term = req
        .qi("searchTerm")
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let ids: Option<Vec<&str>> = req.qi("Ids").map(|i| i.split(',').collect());
    let provider = match st.kind {
        // Jellyfin has no such filter and ignores the parameter.
        BackendKind::Emby => req.qi("AnyProviderIdEquals"),
        _ => None,
    };
    let matching: Vec<&FakeItem> = st
        .catalogue
        .items()
        .iter()
        .filter(|i| {
            types
                .as_ref()
                .is_none_or(|t| t.iter().any(|x| x.eq_ignore_ascii_case(type_name(i.kind))))
        })
        .filter(|i| {
            term.as_ref()
                .is_none_or(|t| i.title.to_lowercase().contains(t.as_str()))
        })
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id.as_str())))
        .filter(|i| provider.is_none_or(|p| emby::provider_filter_matches(i, p)))
        .collect();
    let total = matching.len();
    let start = req
        .qi("StartIndex")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = req.qi("Limit").and_then(|s| s.parse::<usize>().ok());
    let with_user = req.qi("EnableUserData") != Some("false");
    let provider_ids = wants_field(req, "ProviderIds");
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start)
        .take(limit.unwrap_or(usize::MAX))
        .map(|i| item_json(st, with_user.then_some(user), i, provider_ids, false))
        .collect();
    listing(page, total, start)
}

fn episodes(st: &State, req: &Req, series_id: &str) -> Reply {
    match st.catalogue.get(series_id) {
        Some(s) if s.kind == Kind::Series => {}
        _ => return Reply::not_found(),
    }
    let season = req.qi("season").and_then(|s| s.parse::<u32>().ok());
    let user = req.qi("UserId").filter(|u| st.users.iter().any(|x| x == u));
    let provider_ids = wants_field(req, "ProviderIds");
    let eps: Vec<Value> = st
        .catalogue
        .episodes_of(series_id)
        .into_iter()
        .filter(|e| season.is_none_or(|s| e.season == Some(s)))
        .map(|e| item_json(st, user, e, provider_ids, false))
        .collect();
    let n = eps.len();
    listing(eps, n, 0)
}

fn played(st: &mut State, user: &str, req: &Req, id: &str) -> Reply {
    let Some(item) = st.catalogue.get(id).cloned() else {
        return Reply::not_found();
    };
    let at = match req.qi("DatePlayed") {
        None => now(),
        Some(raw) => {
            let parsed = match st.kind {
                BackendKind::Emby => emby::parse_date_played(raw),
                _ => DateTime::parse_from_rfc3339(raw)
                    .ok()
                    .map(|d| d.with_timezone(&Utc)),
            };
            match parsed {
                Some(t) => t,
                None => return Reply::status(400, "Invalid DatePlayed"),
            }
        }
    };
    let s = st.catalogue.state_mut(user, id);
    s.played = true;
    s.play_count += 1;
    s.last_played = Some(at);
    s.position_ms = 0;
    let s = s.clone();
    let echo = echo(st, user, &item, true);
    Reply::json(user_data_json(&item, &s)).with_echo(Some(echo))
}

fn unplayed(st: &mut State, user: &str, id: &str) -> Reply {
    let Some(item) = st.catalogue.get(id).cloned() else {
        return Reply::not_found();
    };
    let s = st.catalogue.state_mut(user, id);
    s.played = false;
    s.play_count = 0;
    s.position_ms = 0;
    let s = s.clone();
    let echo = echo(st, user, &item, false);
    Reply::json(user_data_json(&item, &s)).with_echo(Some(echo))
}

/// `UserItemDataDto` fields that are present are applied; the others stay.
fn user_data(st: &mut State, user: &str, req: &Req, id: &str) -> Reply {
    let Some(item) = st.catalogue.get(id).cloned() else {
        return Reply::not_found();
    };
    let Ok(body) = serde_json::from_str::<Value>(&req.body) else {
        return Reply::status(400, "Body is not JSON");
    };
    let s = st.catalogue.state_mut(user, id);
    if let Some(t) = body.get("PlaybackPositionTicks").and_then(Value::as_u64) {
        s.position_ms = t / TICKS_PER_MS;
    }
    if let Some(p) = body.get("Played").and_then(Value::as_bool) {
        s.played = p;
    }
    if let Some(c) = body.get("PlayCount").and_then(Value::as_u64) {
        s.play_count = c as u32;
    }
    let s = s.clone();
    Reply::json(user_data_json(&item, &s))
}

fn echo(st: &State, user: &str, item: &FakeItem, played: bool) -> Outgoing {
    match st.kind {
        BackendKind::Emby => emby::echo(st, user, item, played),
        _ => echo_user_data_saved(st, user, item, played),
    }
}

/// Jellyfin's webhook plugin `UserDataSaved` (SaveReason `TogglePlayed`), JSON sent as
/// `text/plain` as the plugin does.
fn echo_user_data_saved(st: &State, user: &str, item: &FakeItem, played: bool) -> Outgoing {
    notification(
        st,
        user,
        item,
        "UserDataSaved",
        json!({"Played": played, "SaveReason": "TogglePlayed"}),
    )
}

/// A webhook plugin notification about `item` for `user` (the plugin's default
/// template: flat PascalCase keys, `Provider_*` ids, the user's play state), with
/// `fields` added or overriding.
pub(crate) fn notification(
    st: &State,
    user: &str,
    item: &FakeItem,
    kind: &str,
    fields: Value,
) -> Outgoing {
    let s = st
        .catalogue
        .state(user, &item.id)
        .cloned()
        .unwrap_or_default();
    let at = now();
    let mut v = json!({
        "ServerId": st.server_id,
        "ServerName": st.server_name,
        "ServerVersion": st.version,
        "ServerUrl": "",
        "NotificationType": kind,
        "Timestamp": at.to_rfc3339(),
        "UtcTimestamp": ticks_time(at),
        "Name": item.title,
        "ItemId": item.id,
        "ItemType": type_name(item.kind),
        "Year": item.year,
        "PlaybackPositionTicks": s.position_ms * TICKS_PER_MS,
        "PlayCount": s.play_count,
        "Favorite": false,
        "Played": s.played,
        "NotificationUsername": user,
        "UserId": user,
    });
    let o = v.as_object_mut().expect("object");
    if let Some(d) = item.duration_ms {
        o.insert("RunTimeTicks".into(), json!(d * TICKS_PER_MS));
    }
    if item.kind == Kind::Episode {
        o.insert("SeriesName".into(), json!(item.series_title));
        o.insert("SeriesId".into(), json!(item.series_id));
        o.insert("SeasonNumber".into(), json!(item.season));
        o.insert("EpisodeNumber".into(), json!(item.episode));
    }
    for (k, val) in &item.guids {
        o.insert(format!("Provider_{k}"), json!(val));
    }
    if let Value::Object(extra) = fields {
        o.extend(extra);
    }
    Outgoing {
        event: kind.into(),
        item_id: item.id.clone(),
        content_type: "text/plain; charset=utf-8".into(),
        user_agent: "Jellyfin-Server/10.10.3",
        body: v.to_string().into_bytes(),
    }
}

pub(crate) const TICKS: u64 = TICKS_PER_MS;
/// `GET /Users`: every account as a `UserDto` (the fields a client reads, and the
/// shape around them).
fn users(st: &State) -> Reply {
    let list: Vec<Value> = st
        .users
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "Name": st.names.get(id).cloned().unwrap_or_default(),
                "ServerId": st.server_id,
                "Id": id,
                "HasPassword": true,
                "HasConfiguredPassword": true,
                "HasConfiguredEasyPassword": false,
                "EnableAutoLogin": false,
                "LastLoginDate": "2025-05-30T19:02:11.0000000Z",
                "LastActivityDate": "2025-05-31T21:40:03.0000000Z",
                "Configuration": {"PlayDefaultAudioTrack": true, "SubtitleMode": "Default"},
                "Policy": {"IsAdministrator": i == 0, "IsHidden": i == 0, "IsDisabled": false},
                "PrimaryImageAspectRatio": 1.0,
            })
        })
        .collect();
    Reply::json(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_seven_fraction_digits() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2025, 3, 15, 20, 38, 41).unwrap();
        assert_eq!(ticks_time(t), "2025-03-15T20:38:41.0000000Z");
    }

    #[test]
    fn reads_the_token_of_a_mediabrowser_header() {
        assert_eq!(
            mediabrowser_token(r#"MediaBrowser Client="x", Token="abc""#),
            Some("abc")
        );
        assert_eq!(mediabrowser_token(r#"MediaBrowser Token="t1""#), Some("t1"));
        assert_eq!(mediabrowser_token("Bearer abc"), None);
    }
}
