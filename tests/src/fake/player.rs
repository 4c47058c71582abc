//! What a person does at a media server's own player or UI, as the real server does
//! it: the server changes its own play state (play count, last played time, resume
//! position) and sends the webhooks it would send for it, in its own shapes.
//!
//! | action | Plex | Jellyfin (webhook plugin) | Emby |
//! |---|---|---|---|
//! | watch to the end | `media.scrobble`, `media.stop` | `PlaybackStop` (`PlayedToCompletion`), `UserDataSaved` (`PlaybackFinished`) | `playback.stop` (`PlayedToCompletion`) |
//! | pause midway | `media.pause` | `PlaybackProgress` (`IsPaused`) | `playback.pause` |
//! | stop midway | `media.stop` | `PlaybackStop`, `UserDataSaved` (`PlaybackProgress`) | `playback.stop` |
//! | mark played | nothing | `UserDataSaved` (`TogglePlayed`) | `item.markplayed` |
//! | mark unplayed | nothing | `UserDataSaved` (`TogglePlayed`) | `item.markunplayed` |
//!
//! Plex sends no webhook when a person marks an item played or unplayed in its UI (its
//! webhooks are player and library events only), so only import sees those.
//! A partial play moves the last played time on Plex (`lastViewedAt`) and Jellyfin
//! (`LastPlayedDate`), not on Emby, and leaves the played flag as it was.

use serde_json::json;
use watchstate::domain::model::BackendKind;

use super::{emby, jellyfin, now, plex, FakeServer, Outgoing};

/// A person's action at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerAction {
    /// Played to the end: played, one more play, position cleared.
    WatchToEnd,
    /// Playback paused (`stop: false`) or stopped (`stop: true`) at a position.
    Partial {
        position_ms: u64,
        stop: bool,
    },
    MarkPlayed,
    MarkUnplayed,
}

impl FakeServer {
    /// `user` does `action` on item `id`: the state changes as the real server would
    /// change it, and the webhooks it would send are returned (for the caller to
    /// deliver, drop or delay). `None` when the item is not in this catalogue.
    pub fn act(&self, user: &str, id: &str, action: PlayerAction) -> Option<Vec<Outgoing>> {
        let mut st = self.lock();
        let item = st.catalogue.get(id)?.clone();
        let kind = st.kind;
        let at = now();
        let s = st.catalogue.state_mut(user, id);
        match action {
            PlayerAction::WatchToEnd | PlayerAction::MarkPlayed => {
                s.played = true;
                s.play_count += 1;
                s.last_played = Some(at);
                s.position_ms = 0;
            }
            PlayerAction::Partial { position_ms, .. } => {
                s.position_ms = position_ms;
                if kind != BackendKind::Emby {
                    s.last_played = Some(at);
                }
            }
            PlayerAction::MarkUnplayed => {
                s.played = false;
                s.play_count = 0;
                s.position_ms = 0;
            }
        }
        let st = &*st;
        let duration = item.duration_ms.unwrap_or(0);
        let hooks = match (kind, action) {
            (BackendKind::Plex, PlayerAction::WatchToEnd) => vec![
                plex::player_event(st, user, &item, "media.scrobble"),
                plex::player_event(st, user, &item, "media.stop"),
            ],
            (BackendKind::Plex, PlayerAction::Partial { stop, .. }) => {
                let event = if stop { "media.stop" } else { "media.pause" };
                vec![plex::player_event(st, user, &item, event)]
            }
            (BackendKind::Plex, _) => Vec::new(),
            (BackendKind::Jellyfin, PlayerAction::WatchToEnd) => vec![
                jellyfin::notification(
                    st,
                    user,
                    &item,
                    "PlaybackStop",
                    json!({
                        "PlayedToCompletion": true,
                        "IsPaused": false,
                        "PlaybackPositionTicks": duration * jellyfin::TICKS,
                    }),
                ),
                jellyfin::notification(
                    st,
                    user,
                    &item,
                    "UserDataSaved",
                    json!({"SaveReason": "PlaybackFinished"}),
                ),
            ],
            (BackendKind::Jellyfin, PlayerAction::Partial { stop: false, .. }) => {
                vec![jellyfin::notification(
                    st,
                    user,
                    &item,
                    "PlaybackProgress",
                    json!({"IsPaused": true}),
                )]
            }
            (BackendKind::Jellyfin, PlayerAction::Partial { stop: true, .. }) => vec![
                jellyfin::notification(
                    st,
                    user,
                    &item,
                    "PlaybackStop",
                    json!({"PlayedToCompletion": false, "IsPaused": false}),
                ),
                jellyfin::notification(
                    st,
                    user,
                    &item,
                    "UserDataSaved",
                    json!({"SaveReason": "PlaybackProgress"}),
                ),
            ],
            (BackendKind::Jellyfin, PlayerAction::MarkPlayed | PlayerAction::MarkUnplayed) => {
                vec![jellyfin::notification(
                    st,
                    user,
                    &item,
                    "UserDataSaved",
                    json!({"SaveReason": "TogglePlayed"}),
                )]
            }
            (BackendKind::Emby, PlayerAction::WatchToEnd) => vec![emby::playback(
                st,
                user,
                &item,
                "playback.stop",
                true,
                duration,
            )],
            (BackendKind::Emby, PlayerAction::Partial { position_ms, stop }) => {
                let event = if stop {
                    "playback.stop"
                } else {
                    "playback.pause"
                };
                vec![emby::playback(st, user, &item, event, false, position_ms)]
            }
            (BackendKind::Emby, PlayerAction::MarkPlayed) => {
                vec![emby::echo(st, user, &item, true)]
            }
            (BackendKind::Emby, PlayerAction::MarkUnplayed) => {
                vec![emby::echo(st, user, &item, false)]
            }
        };
        Some(hooks)
    }
}
