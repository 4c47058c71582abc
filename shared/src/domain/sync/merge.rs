//! Two stored items that turn out to be one (docs/RELIABILITY.md, "The rules, one place": Matching): when a report
//! joins ids that two items hold separately, the two are merged into one, keeping
//! the newest evidence of each kind. This happens when one server's report of an
//! episode carries only its own ids (a Jellyfin webhook) and another's only the show's
//! ids and numbers (a Plex legacy-agent episode): each made its own item, and a later
//! report carrying both (an import listing, an Emby webhook, a search result) proves
//! them the same.
//!
//! Merging is matching by another name, so it obeys the same rule: never across a
//! contradiction. Two items whose own guids, show guids or numbers of the same kind
//! disagree, or that hold different ids on one backend, stay apart.

use crate::domain::model::{BackendState, ChangeKind, Item, ItemType, StateChange};

use super::matching::{disagree, same_item, Identity};

/// The identity an item states about itself.
pub fn identity(item: &Item) -> Identity<'_> {
    Identity {
        kind: item.kind,
        guids: &item.guids,
        series_guids: &item.series_guids,
        season: item.season,
        episode: item.episode,
    }
}

/// Whether `other` is the item `before` became as `after` (the same item with what a
/// report added): `after` matches `other` as a search result would, and neither
/// version of the item contradicts it.
pub fn proven_same(before: &Item, after: &Item, other: &Item) -> bool {
    if other.id == after.id || other.kind != after.kind {
        return false;
    }
    for it in [before, after] {
        if disagree(&it.guids, &other.guids) || disagree(&it.series_guids, &other.series_guids) {
            return false;
        }
        if it.kind == ItemType::Episode
            && numbers(it).is_some()
            && numbers(other).is_some()
            && numbers(it) != numbers(other)
        {
            return false;
        }
        // One backend holding two different ids: two items there.
        let clash = it.backends.iter().any(|(name, st)| {
            let theirs = other.backends.get(name).and_then(|s| s.item_id.as_ref());
            matches!((st.item_id.as_ref(), theirs), (Some(a), Some(b)) if a != b)
        });
        if clash {
            return false;
        }
    }
    // The same id on one backend is the backend's own word; else a match as a search
    // result would be.
    let same_id = after.backends.iter().any(|(name, st)| {
        st.item_id.is_some()
            && other.backends.get(name).and_then(|s| s.item_id.as_ref()) == st.item_id.as_ref()
    });
    same_id || same_item(other, identity(after))
}

fn numbers(item: &Item) -> Option<(u32, u32)> {
    Some((item.season?, item.episode?))
}

/// One item holding both items' ids and the newest evidence of each: the play state
/// whose stamp is newer (a tie keeps `keep`'s: only strictly newer evidence wins), the
/// position taken later, and per backend the state seen later. `keep` gives the id and
/// version.
pub fn merge(keep: &Item, other: &Item) -> Item {
    let mut m = keep.clone();
    super::enrich(
        &mut m,
        super::Meta {
            guids: &other.guids,
            series_guids: &other.series_guids,
            title: other.title.as_ref(),
            year: other.year,
            series_title: other.series_title.as_ref(),
            season: other.season,
            episode: other.episode,
        },
    );
    if other.state_updated_at > keep.state_updated_at {
        m.watched = other.watched;
        m.state_updated_at = other.state_updated_at;
        m.unplayed_at = other.unplayed_at;
        m.via = other.via.clone();
    }
    // The later position; of two untimed ones, keep's unless it has none.
    let theirs_later = match (other.progress_at, keep.progress_at) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => keep.progress_ms.is_none(),
    };
    if other.progress_ms.is_some() && theirs_later {
        m.progress_ms = other.progress_ms;
        m.progress_at = other.progress_at;
    }
    if m.watched {
        // A watched item has no resume point.
        m.progress_ms = None;
        m.progress_at = None;
    }
    for (name, theirs) in &other.backends {
        let ours = m.backends.entry(name.clone()).or_default();
        *ours = newer_state(ours, theirs);
    }
    m
}

/// Of two records of one backend, the one seen later (an id kept from either).
fn newer_state(ours: &BackendState, theirs: &BackendState) -> BackendState {
    let mut s = if theirs.seen_at > ours.seen_at {
        theirs.clone()
    } else {
        ours.clone()
    };
    if s.item_id.is_none() {
        s.item_id = ours.item_id.clone().or_else(|| theirs.item_id.clone());
    }
    s.missing = s.missing && s.item_id.is_none();
    s
}

/// What the other backends must hear after a merge: the merged play state where one of
/// the two items held another (its backends were kept in line with that one), else
/// the merged position where it moved. Never from "nothing known": a merged item
/// without evidence of a play or an unplay pushes nothing.
pub fn merge_change(merged: &Item, a: &Item, b: &Item, user: &str) -> Option<StateChange> {
    let kind = if [a, b].iter().any(|i| i.watched != merged.watched)
        && (merged.watched || super::has_unplay(merged))
    {
        ChangeKind::Watched
    } else if !merged.watched
        && merged.progress_ms.is_some()
        && [a, b].iter().any(|i| i.progress_ms != merged.progress_ms)
    {
        ChangeKind::Progress
    } else {
        return None;
    };
    let mut change = super::change_from(merged, user, "", kind);
    change.origin = None;
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guid::from_pairs as guids;
    use crate::domain::sync::test_support::item;
    use crate::domain::sync::{flip, never};
    use chrono::{TimeZone, Utc};

    fn episode(
        id: &str,
        own: &[(&str, &str)],
        series: &[(&str, &str)],
        se: Option<(u32, u32)>,
    ) -> Item {
        item(id, ItemType::Episode, own, series, se)
    }

    fn on(mut item: Item, backend: &str, id: &str) -> Item {
        item.backends.insert(
            backend.into(),
            BackendState {
                item_id: Some(id.into()),
                ..Default::default()
            },
        );
        item
    }

    fn at(secs: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
    }

    /// Jellyfin's webhook: own id only. Plex legacy: show id and numbers only.
    fn the_two() -> (Item, Item) {
        let jf = on(
            episode("a", &[("tvdb", "310012")], &[], None),
            "jellyfin",
            "j1",
        );
        let plex = on(
            episode("b", &[], &[("tvdb", "81189")], Some((1, 2))),
            "plex",
            "532",
        );
        (jf, plex)
    }

    #[test]
    fn a_report_with_both_ids_proves_them_the_same() {
        let (jf, plex) = the_two();
        assert!(!proven_same(&jf, &jf, &plex), "nothing joins them yet");
        let mut after = jf.clone();
        after.series_guids = guids(&[("tvdb", "81189")]);
        after.season = Some(1);
        after.episode = Some(2);
        assert!(proven_same(&jf, &after, &plex));
    }

    #[test]
    fn contradictions_keep_them_apart() {
        let (jf, plex) = the_two();
        let mut after = jf.clone();
        after.series_guids = guids(&[("tvdb", "81189")]);
        after.season = Some(1);
        after.episode = Some(2);
        // Plex's item has its own tvdb id, another one: a differently ordered episode.
        let mut other = plex.clone();
        other.guids = guids(&[("tvdb", "999")]);
        assert!(!proven_same(&jf, &after, &other));
        // Another show.
        let mut other = plex.clone();
        other.series_guids = guids(&[("tvdb", "1")]);
        assert!(!proven_same(&jf, &after, &other));
        // Other numbers.
        let mut other = plex.clone();
        other.episode = Some(3);
        assert!(!proven_same(&jf, &after, &other));
        // Jellyfin holds another id for the Plex item's episode.
        let other = on(plex.clone(), "jellyfin", "j2");
        assert!(!proven_same(&jf, &after, &other));
        // The same id on one backend is no clash, and proof enough.
        let other = on(plex.clone(), "jellyfin", "j1");
        assert!(proven_same(&jf, &after, &other));
        let plex_seen_on_jellyfin = on(plex.clone(), "jellyfin", "j1");
        assert!(proven_same(&jf, &jf, &plex_seen_on_jellyfin));
        // A movie never merges with an episode, nor an item with itself.
        assert!(!proven_same(&jf, &after, &after));
    }

    #[test]
    fn the_newest_play_state_wins_and_never_loses_a_watched() {
        let (mut jf, plex) = the_two();
        flip(&mut jf, true, at(10), "jellyfin");
        // The Plex item knows nothing ("never"): the watched stands.
        let m = merge(&plex, &jf);
        assert!(m.watched && m.state_updated_at == at(10));
        assert_eq!(m.id, "b", "the kept item's id");
        assert_eq!(m.backends.len(), 2);
        let m = merge(&jf, &plex);
        assert!(m.watched);
        // A newer unplay on the other wins over an older play.
        let mut plex2 = plex.clone();
        flip(&mut plex2, false, at(20), "plex");
        let m = merge(&jf, &plex2);
        assert!(!m.watched && m.unplayed_at == Some(at(20)));
        // An older unplay loses.
        let mut plex3 = plex.clone();
        flip(&mut plex3, false, at(5), "plex");
        assert!(merge(&jf, &plex3).watched);
        assert_eq!(merge(&plex3, &jf).state_updated_at, at(10));
        assert!(never() < at(0));
    }

    #[test]
    fn positions_newest_wins_and_a_watched_item_has_none() {
        let (jf, mut plex) = the_two();
        plex.progress_ms = Some(872_000);
        plex.progress_at = Some(at(30));
        let m = merge(&jf, &plex);
        assert_eq!(m.progress_ms, Some(872_000));
        let mut jf2 = jf.clone();
        jf2.progress_ms = Some(100_000);
        jf2.progress_at = Some(at(40));
        assert_eq!(merge(&jf2, &plex).progress_ms, Some(100_000));
        assert_eq!(merge(&plex, &jf2).progress_ms, Some(100_000));
        let mut watched = jf.clone();
        flip(&mut watched, true, at(50), "jellyfin");
        let m = merge(&watched, &plex);
        assert!(m.watched && m.progress_ms.is_none());
    }

    #[test]
    fn the_merge_pushes_what_one_side_lacked_and_never_nothing_known() {
        let (mut jf, plex) = the_two();
        assert_eq!(merge_change(&merge(&jf, &plex), &jf, &plex, "ana"), None);
        flip(&mut jf, true, at(10), "jellyfin");
        let m = merge(&plex, &jf);
        let c = merge_change(&m, &plex, &jf, "ana").expect("the Plex side was unwatched");
        assert!(c.watched && c.kind == ChangeKind::Watched && c.item_id == "b");
        assert_eq!(c.origin, None);
        let mut p = plex.clone();
        p.progress_ms = Some(872_000);
        p.progress_at = Some(at(30));
        let (jf0, _) = the_two();
        let m = merge(&jf0, &p);
        assert_eq!(
            merge_change(&m, &jf0, &p, "ana").map(|c| c.kind),
            Some(ChangeKind::Progress)
        );
    }

    #[test]
    fn per_backend_the_later_seen_state_and_any_id() {
        let (jf, plex) = the_two();
        let mut a = jf.clone();
        a.backends.insert(
            "plex".into(),
            BackendState {
                missing: true,
                seen_at: Some(at(1)),
                ..Default::default()
            },
        );
        let m = merge(&a, &plex);
        let st = &m.backends["plex"];
        assert_eq!(st.item_id.as_deref(), Some("532"));
        assert!(!st.missing, "an id found clears missing");
    }
}
