//! Matching (docs/RELIABILITY.md, "The rules, one place": Matching): the backend's own item id first, then any shared
//! guid, then relative episode guids (`tvdb:SHOW/S/E`); never by title or file name.
//! Two items whose guids of the **same kind disagree** are different items whatever
//! else they share: a guid, relative key or search result is a match only when there
//! is no such contradiction (servers that order a show differently give "S01E01" to
//! different episodes; specials and anime do it all the time).

use crate::domain::model::{Guids, Item, ItemType};

/// What a report says identifies an item (an event, a listing entry, a search result).
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub kind: ItemType,
    pub guids: &'a Guids,
    pub series_guids: &'a Guids,
    pub season: Option<u32>,
    pub episode: Option<u32>,
}

/// Whether two id sets share some kind with the same value.
pub fn shares_guid(a: &Guids, b: &Guids) -> bool {
    a.iter().any(|(k, v)| b.get(k) == Some(v))
}

/// Whether two id sets hold the same kind with different values.
pub fn disagree(a: &Guids, b: &Guids) -> bool {
    a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v))
}

/// Whether a stored item and a report cannot be the same thing: another type, or an
/// own guid of the same kind with another value. Shared numbers, series ids or titles
/// never outweigh that.
pub fn contradicts(item: &Item, other: Identity<'_>) -> bool {
    item.kind != other.kind || disagree(&item.guids, other.guids)
}

/// Whether a search result is the stored item: no contradiction, and a shared guid,
/// or (episodes) a shared series guid with the same season and episode numbers.
pub fn same_item(item: &Item, candidate: Identity<'_>) -> bool {
    if contradicts(item, candidate) {
        return false;
    }
    if shares_guid(&item.guids, candidate.guids) {
        return true;
    }
    item.kind == ItemType::Episode
        && item.season.is_some()
        && item.episode.is_some()
        && item.season == candidate.season
        && item.episode == candidate.episode
        && shares_guid(&item.series_guids, candidate.series_guids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guid::from_pairs as guids;
    use crate::domain::sync::test_support::item;

    fn episode(own: &[(&str, &str)], series: &[(&str, &str)], s: u32, e: u32) -> Item {
        item("i", ItemType::Episode, own, series, Some((s, e)))
    }

    fn id<'a>(g: &'a Guids, sg: &'a Guids, s: u32, e: u32) -> Identity<'a> {
        Identity {
            kind: ItemType::Episode,
            guids: g,
            series_guids: sg,
            season: Some(s),
            episode: Some(e),
        }
    }

    #[test]
    fn differently_ordered_episodes_never_match() {
        // Plex's S01E01 is tvdb A, Jellyfin's S01E01 is tvdb B: same show, same numbers.
        let plex = episode(&[("tvdb", "1001")], &[("tvdb", "81189")], 1, 1);
        let (g, sg) = (guids(&[("tvdb", "2002")]), guids(&[("tvdb", "81189")]));
        assert!(contradicts(&plex, id(&g, &sg, 1, 1)));
        assert!(!same_item(&plex, id(&g, &sg, 1, 1)));
    }

    #[test]
    fn relative_match_without_contradiction() {
        let plex = episode(&[], &[("tvdb", "81189")], 1, 1);
        let (g, sg) = (guids(&[("tvdb", "2002")]), guids(&[("tvdb", "81189")]));
        assert!(same_item(&plex, id(&g, &sg, 1, 1)));
        assert!(!same_item(&plex, id(&g, &sg, 1, 2)), "other numbers");
        let other_show = guids(&[("tvdb", "99")]);
        assert!(!same_item(&plex, id(&g, &other_show, 1, 1)));
    }

    #[test]
    fn a_shared_guid_with_a_contradicting_one_is_no_match() {
        // Same imdb (a bad merge upstream) but different tvdb: different episodes.
        let a = episode(&[("imdb", "tt1"), ("tvdb", "1")], &[], 1, 1);
        let (g, sg) = (guids(&[("imdb", "tt1"), ("tvdb", "2")]), Guids::new());
        assert!(!same_item(&a, id(&g, &sg, 1, 1)));
        let (g, sg) = (guids(&[("imdb", "tt1")]), Guids::new());
        assert!(same_item(&a, id(&g, &sg, 1, 1)));
    }

    #[test]
    fn movies_match_by_guid_only_and_remakes_differ() {
        let g = guids(&[("imdb", "tt0111161")]);
        let movie = item("m", ItemType::Movie, &[("imdb", "tt0111161")], &[], None);
        let remake = guids(&[("imdb", "tt9999999")]);
        let none = Guids::new();
        let ident = |g| Identity {
            kind: ItemType::Movie,
            guids: g,
            series_guids: &none,
            season: None,
            episode: None,
        };
        assert!(same_item(&movie, ident(&g)));
        assert!(!same_item(&movie, ident(&remake)));
        assert!(!same_item(&movie, ident(&none)), "never by title alone");
    }
}
