//! The fake Plex Media Server: the routes our Plex client calls, answered in the JSON
//! shapes of `tests/fixtures/api/plex/` (`MediaContainer` with `Metadata`/`Directory`/
//! `Hub`, string ratingKeys, `Guid[]` only with `includeGuids=1`, zero `viewCount` and
//! `viewOffset` omitted).
//!
//! Sections: `1` Movies (`movie`), `2` TV Shows (`show`: shows, `type=4` episodes),
//! `3` Music (`artist`, always empty). Paging by `X-Plex-Container-Start`/`-Size`
//! (headers or query), answered with `totalSize`/`offset` and
//! `X-Plex-Container-Total-Size`. Auth: `X-Plex-Token` header or query; `/identity`
//! answers without one, as Plex does. `/accounts` (the server's accounts, as
//! `MediaContainer.Account[]` with numeric ids) answers the owner's token only.

use serde_json::{json, Map, Value};

use super::{now, Call, FakeItem, Kind, Outgoing, Reply, Req, State};

const MOVIE_SECTION: &str = "1";
const SHOW_SECTION: &str = "2";
const MUSIC_SECTION: &str = "3";

pub(crate) fn route(st: &mut State, req: &Req) -> Reply {
    let path = req.path.as_str();
    if req.method == "GET" && path == "/identity" {
        return Reply::json(json!({"MediaContainer": {
            "size": 0,
            "claimed": true,
            "machineIdentifier": st.server_id,
            "version": st.version,
        }}));
    }
    let token = req.header("x-plex-token").or_else(|| req.q("X-Plex-Token"));
    let Some(user) = st.user_of(token) else {
        return Reply::status(
            401,
            "<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>",
        );
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        // Only the server owner's token may list the server's accounts.
        ("GET", ["accounts"]) if st.users.first() == Some(&user) => accounts(st),
        ("GET", ["accounts"]) => Reply::unauthorized(),
        ("GET", ["library", "sections"]) => sections(),
        ("GET", ["library", "sections", id, "all"]) => section_all(st, &user, req, id),
        ("GET", ["library", "metadata", key]) => match st.catalogue.get(key) {
            Some(item) => container(
                vec![metadata(st, &user, item, include_guids(req))],
                json!({"size": 1}),
            ),
            None => Reply::not_found(),
        },
        ("GET", ["library", "metadata", key, "allLeaves"]) => match st.catalogue.get(key) {
            Some(show) if show.kind == Kind::Series => {
                let eps: Vec<Value> = st
                    .catalogue
                    .episodes_of(key)
                    .into_iter()
                    .map(|e| metadata(st, &user, e, include_guids(req)))
                    .collect();
                let n = eps.len();
                container(
                    eps,
                    json!({"size": n, "key": key, "title1": show.title, "title2": "All episodes"}),
                )
            }
            _ => Reply::not_found(),
        },
        ("GET", ["hubs", "search"]) => search(st, &user, req),
        ("GET", [":", "scrobble"]) => scrobble(st, &user, req, true),
        ("GET", [":", "unscrobble"]) => scrobble(st, &user, req, false),
        ("GET" | "POST", [":", "timeline"]) => timeline(st, &user, req),
        _ => Reply::not_found(),
    }
}

/// `GET /accounts`: the system account 0 (no name) first, then every account, as
/// Plex Media Server lists them.
fn accounts(st: &State) -> Reply {
    let mut list = vec![json!({
        "id": 0, "key": "/accounts/0", "name": "", "defaultAudioLanguage": "en",
        "autoSelectAudio": true, "defaultSubtitleLanguage": "en", "subtitleMode": 0,
        "thumb": "",
    })];
    for user in &st.users {
        let id: Value = user
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(user));
        list.push(json!({
            "id": id,
            "key": format!("/accounts/{user}"),
            "name": st.names.get(user).cloned().unwrap_or_default(),
            "defaultAudioLanguage": "en",
            "autoSelectAudio": true,
            "defaultSubtitleLanguage": "en",
            "subtitleMode": 1,
            "thumb": format!("https://plex.tv/users/{user:0>16}/avatar?c=1707110967"),
        }));
    }
    Reply::json(json!({"MediaContainer": {
        "size": list.len(),
        "identifier": "com.plexapp.system.accounts",
        "Account": list,
    }}))
}

fn include_guids(req: &Call) -> bool {
    req.q("includeGuids") == Some("1")
}

fn container(metadata: Vec<Value>, extra: Value) -> Reply {
    let mut mc = Map::new();
    mc.insert("allowSync".into(), json!(true));
    mc.insert("identifier".into(), json!("com.plexapp.plugins.library"));
    mc.insert(
        "mediaTagPrefix".into(),
        json!("/system/bundle/media/flags/"),
    );
    if let Value::Object(extra) = extra {
        mc.extend(extra);
    }
    mc.insert("Metadata".into(), Value::Array(metadata));
    Reply::json(json!({"MediaContainer": mc}))
}

fn sections() -> Reply {
    let dir = |key: &str, kind: &str, title: &str, agent: &str, scanner: &str| {
        json!({
            "allowSync": true,
            "art": format!("/:/resources/{kind}-fanart.jpg"),
            "composite": format!("/library/sections/{key}/composite/1645563796"),
            "filters": true,
            "refreshing": false,
            "thumb": format!("/:/resources/{kind}.png"),
            "key": key,
            "type": kind,
            "title": title,
            "agent": agent,
            "scanner": scanner,
            "language": "en-US",
            "uuid": format!("d03f8ea3-5410-4e59-8c68-cf32e2eab64{key}"),
            "updatedAt": 1645563845,
            "createdAt": 1499601519,
            "scannedAt": 1645563796,
            "content": true,
            "directory": true,
            "contentChangedAt": 11238897,
            "hidden": 0,
            "Location": [{"id": key.parse::<u32>().unwrap_or(0) + 60, "path": format!("/media/{kind}")}],
        })
    };
    Reply::json(json!({"MediaContainer": {
        "size": 3,
        "allowSync": false,
        "title1": "Plex Library",
        "Directory": [
            dir(MOVIE_SECTION, "movie", "Movies", "tv.plex.agents.movie", "Plex Movie"),
            dir(SHOW_SECTION, "show", "TV Shows", "tv.plex.agents.series", "Plex TV Series"),
            dir(MUSIC_SECTION, "artist", "Music", "tv.plex.agents.music", "Plex Music"),
        ],
    }}))
}

/// `X-Plex-Container-Start`/`-Size` from the headers, else the query.
fn paging(req: &Call) -> (usize, Option<usize>) {
    let get = |name: &str| {
        req.header(name)
            .or_else(|| req.q(name))
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    (
        get("X-Plex-Container-Start").unwrap_or(0),
        get("X-Plex-Container-Size"),
    )
}

fn section_all(st: &State, user: &str, req: &Req, id: &str) -> Reply {
    let plex_type = req.q("type");
    let wanted = match (id, plex_type) {
        (MOVIE_SECTION, None | Some("1")) => Some(Kind::Movie),
        (SHOW_SECTION, None | Some("2")) => Some(Kind::Series),
        (SHOW_SECTION, Some("4")) => Some(Kind::Episode),
        (MOVIE_SECTION | SHOW_SECTION | MUSIC_SECTION, _) => None,
        _ => return Reply::not_found(),
    };
    let all: Vec<&FakeItem> = st
        .catalogue
        .items()
        .iter()
        .filter(|i| Some(i.kind) == wanted)
        .collect();
    let total = all.len();
    let (start, size) = paging(req);
    let page: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(size.unwrap_or(usize::MAX))
        .map(|i| metadata(st, user, i, include_guids(req)))
        .collect();
    let (title, view_group) = match id {
        MOVIE_SECTION => ("Movies", "movie"),
        SHOW_SECTION => ("TV Shows", "show"),
        _ => ("Music", "artist"),
    };
    container(
        page.clone(),
        json!({
            "size": page.len(),
            "totalSize": total,
            "offset": start,
            "librarySectionID": id.parse::<u32>().unwrap_or(0),
            "librarySectionTitle": title,
            "title1": title,
            "viewGroup": view_group,
        }),
    )
    .header("X-Plex-Container-Start", start.to_string())
    .header("X-Plex-Container-Total-Size", total.to_string())
}

fn search(st: &State, user: &str, req: &Req) -> Reply {
    let query = req.q("query").unwrap_or("").to_lowercase();
    let limit = req
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10);
    let hit = |kind: Kind| -> Vec<Value> {
        st.catalogue
            .items()
            .iter()
            .filter(|i| {
                i.kind == kind && !query.is_empty() && i.title.to_lowercase().contains(&query)
            })
            .take(limit)
            .map(|i| metadata(st, user, i, include_guids(req)))
            .collect()
    };
    let hub = |kind: Kind, plex_type: &str, title: &str| {
        let m = hit(kind);
        json!({
            "title": title,
            "type": plex_type,
            "hubIdentifier": plex_type,
            "context": "",
            "size": m.len(),
            "more": false,
            "style": "shelf",
            "Metadata": m,
        })
    };
    Reply::json(json!({"MediaContainer": {
        "size": 3,
        "Hub": [
            hub(Kind::Movie, "movie", "Movies"),
            hub(Kind::Series, "show", "Shows"),
            hub(Kind::Episode, "episode", "Episodes"),
        ],
    }}))
}

fn scrobble(st: &mut State, user: &str, req: &Req, played: bool) -> Reply {
    if req.q("identifier") != Some("com.plexapp.plugins.library") {
        return Reply::status(400, "Bad Request");
    }
    let Some(key) = req.q("key") else {
        return Reply::status(400, "Bad Request");
    };
    let Some(item) = st.catalogue.get(key).cloned() else {
        return Reply::not_found();
    };
    let s = st.catalogue.state_mut(user, key);
    if played {
        s.played = true;
        s.play_count += 1;
        s.last_played = Some(now());
        s.position_ms = 0;
    } else {
        s.played = false;
        s.play_count = 0;
        s.position_ms = 0;
    }
    // Plex sends no webhook for an API scrobble (nor for unscrobble).
    let echo = (played && st.plex_scrobble_echo).then(|| echo_scrobble(st, user, &item));
    Reply::empty(200).with_echo(echo)
}

fn timeline(st: &mut State, user: &str, req: &Req) -> Reply {
    let Some(key) = req.q("ratingKey") else {
        return Reply::status(400, "Bad Request");
    };
    let Some(time) = req.q("time").and_then(|t| t.parse::<u64>().ok()) else {
        return Reply::status(400, "Bad Request");
    };
    if st.catalogue.get(key).is_none() {
        return Reply::not_found();
    }
    st.catalogue.state_mut(user, key).position_ms = time;
    Reply::empty(200)
}

/// Plex guid spelling of a normalized id.
fn plex_guid(kind: &str, value: &str) -> String {
    format!("{kind}://{value}")
}

/// A `Metadata` entry as Plex writes it.
pub(crate) fn metadata(st: &State, user: &str, item: &FakeItem, with_guids: bool) -> Value {
    let plex_type = match item.kind {
        Kind::Movie => "movie",
        Kind::Series => "show",
        Kind::Episode => "episode",
    };
    let own_guid = item
        .legacy_guid
        .clone()
        .unwrap_or_else(|| format!("plex://{plex_type}/{:0>24}", item.id));
    let key = match item.kind {
        Kind::Series => format!("/library/metadata/{}/children", item.id),
        _ => format!("/library/metadata/{}", item.id),
    };
    let section = match item.kind {
        Kind::Movie => 1,
        _ => 2,
    };
    let mut m = json!({
        "ratingKey": item.id,
        "key": key,
        "guid": own_guid,
        "type": plex_type,
        "title": item.title,
        "librarySectionID": section,
        "librarySectionKey": format!("/library/sections/{section}"),
        "summary": "",
        "thumb": format!("/library/metadata/{}/thumb/1579514152", item.id),
        "addedAt": 1579514088,
        "updatedAt": 1579514152,
    });
    let o = m.as_object_mut().expect("object");
    if let Some(y) = item.year {
        o.insert("year".into(), json!(y));
    }
    if let Some(d) = item.duration_ms {
        o.insert("duration".into(), json!(d));
    }
    if item.kind == Kind::Episode {
        let show = item.series_id.as_deref().and_then(|s| st.catalogue.get(s));
        let show_id = item.series_id.clone().unwrap_or_default();
        o.insert("grandparentRatingKey".into(), json!(show_id));
        o.insert(
            "grandparentKey".into(),
            json!(format!("/library/metadata/{show_id}")),
        );
        o.insert("grandparentTitle".into(), json!(item.series_title));
        o.insert(
            "grandparentGuid".into(),
            json!(show
                .and_then(|s| s.legacy_guid.clone())
                .unwrap_or_else(|| format!("plex://show/{show_id:0>24}"))),
        );
        let season = item.season.unwrap_or(0);
        o.insert(
            "parentRatingKey".into(),
            json!(format!("{show_id}{season:02}")),
        );
        o.insert("parentTitle".into(), json!(format!("Season {season}")));
        o.insert("parentIndex".into(), json!(season));
        o.insert("index".into(), json!(item.episode));
    }
    if item.kind == Kind::Series {
        let eps = st.catalogue.episodes_of(&item.id);
        let viewed = eps
            .iter()
            .filter(|e| st.catalogue.state(user, &e.id).is_some_and(|s| s.played))
            .count();
        o.insert("leafCount".into(), json!(eps.len()));
        o.insert("viewedLeafCount".into(), json!(viewed));
        o.insert("childCount".into(), json!(1));
    }
    if with_guids {
        let guids: Vec<Value> = item
            .guids
            .iter()
            .map(|(k, v)| json!({"id": plex_guid(k, v)}))
            .collect();
        o.insert("Guid".into(), Value::Array(guids));
    }
    if item.kind != Kind::Series {
        let s = st
            .catalogue
            .state(user, &item.id)
            .cloned()
            .unwrap_or_default();
        // Plex omits zero counts and offsets.
        if s.played {
            o.insert("viewCount".into(), json!(s.play_count.max(1)));
        }
        if s.position_ms > 0 {
            o.insert("viewOffset".into(), json!(s.position_ms));
        }
        if let Some(t) = s.last_played {
            o.insert("lastViewedAt".into(), json!(t.timestamp()));
        }
    }
    m
}

/// The `media.scrobble` webhook a Plex player would cause, multipart as Plex sends it.
fn echo_scrobble(st: &State, user: &str, item: &FakeItem) -> Outgoing {
    player_event(st, user, item, "media.scrobble")
}

/// A player's webhook (`media.scrobble`, `media.pause`, `media.stop`, ...) about
/// `item` for the account `user`, multipart as Plex sends it, with that account's
/// play state in `Metadata`. Plex sends every account's events to every webhook URL
/// of the server owner's account.
pub(crate) fn player_event(st: &State, user: &str, item: &FakeItem, event: &str) -> Outgoing {
    let mut md = metadata(st, user, item, true);
    md["librarySectionType"] = json!(match item.kind {
        Kind::Movie => "movie",
        _ => "show",
    });
    let payload = json!({
        "event": event,
        "user": true,
        "owner": st.users.first().is_some_and(|u| u == user),
        "Account": {"id": user.parse::<u64>().unwrap_or(1), "title": "fake"},
        "Server": {"title": st.server_name, "uuid": st.server_id},
        "Player": {"local": true, "publicAddress": "127.0.0.1", "title": "fake player", "uuid": "fakeplayer"},
        "Metadata": md,
    });
    Outgoing {
        event: event.into(),
        item_id: item.id.clone(),
        content_type: format!("multipart/form-data; boundary={}", crate::BOUNDARY),
        user_agent: "PlexMediaServer/1.41.3.9314-a0bfb8370",
        body: crate::multipart(&[(
            "payload",
            None,
            Some("application/json"),
            payload.to_string().as_bytes(),
        )]),
    }
}
