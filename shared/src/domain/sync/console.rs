//! A person's "Mark played" / "Mark unplayed" in the console: a person's own action,
//! not a backend's report. The same rule as a played/unplayed event, stamped with the
//! time of the click; a flip is pushed to every backend (the change has no origin);
//! the same state again only moves the stamp forward (newest wins); a time that is
//! not newer is stale. An unmark here is a person's unplay like any other.

use chrono::{DateTime, Utc};

use super::{flip_pushed, item_differs, Decision, NoChange};
use crate::domain::model::Item;

/// The `via` of a state a person set in the console (no backend may take this name).
pub const CONSOLE: &str = "console";

/// What the action does to the stored item.
pub fn mark(old: &Item, user: &str, watched: bool, at: DateTime<Utc>) -> Decision {
    let mut item = old.clone();
    let (no_change, detail, change) = if item.watched == watched {
        if at > item.state_updated_at {
            item.state_updated_at = at;
            if !watched {
                item.unplayed_at = Some(at);
            }
        }
        (Some(NoChange::SameState), None, None)
    } else if at <= item.state_updated_at {
        (
            Some(NoChange::Stale),
            Some(format!(
                "the time of this action {} is not newer than the stored state ({})",
                at.to_rfc3339(),
                item.state_updated_at.to_rfc3339()
            )),
            None,
        )
    } else {
        let mut change = flip_pushed(&mut item, watched, at, user, CONSOLE);
        // The console is no backend: the change is pushed to every one of them.
        change.origin = None;
        (None, None, Some(change))
    };
    Decision {
        write: item_differs(old, &item),
        item,
        no_change,
        detail,
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{ChangeKind, ItemType};
    use crate::domain::sync::test_support::{at, item, NOW};
    use crate::domain::sync::{flip, has_unplay};

    fn stored(watched: bool, at_secs: i64) -> Item {
        let mut item = item("item-1", ItemType::Movie, &[], &[], None);
        flip(&mut item, watched, at(at_secs), "plex");
        item.version = 3;
        item
    }

    #[test]
    fn console_mark_flips_when_newer_and_pushes_everywhere() {
        let old = stored(false, NOW - 1000);
        let d = mark(&old, "ana", true, at(NOW));
        assert!(d.write && d.item.watched);
        assert_eq!(d.item.state_updated_at, at(NOW));
        assert_eq!(d.item.via.as_deref(), Some(CONSOLE));
        let c = d.change.expect("a flip is pushed");
        assert_eq!(
            (c.origin, c.watched, c.kind),
            (None, true, ChangeKind::Watched)
        );
        // The backends' own states are theirs: a console action does not touch them.
        assert_eq!(d.item.backends, old.backends);
    }

    #[test]
    fn console_mark_of_the_same_state_moves_the_stamp_only() {
        let old = stored(true, NOW - 1000);
        let d = mark(&old, "ana", true, at(NOW));
        assert_eq!(d.no_change, Some(NoChange::SameState));
        assert!(d.change.is_none());
        assert_eq!(d.item.state_updated_at, at(NOW));
        assert!(d.write);
        let again = mark(&d.item, "ana", true, at(NOW));
        assert!(!again.write, "an identical repeat writes nothing");
    }

    #[test]
    fn console_mark_older_than_the_stored_state_is_stale() {
        let old = stored(true, NOW);
        let d = mark(&old, "ana", false, at(NOW - 5));
        assert_eq!(d.no_change, Some(NoChange::Stale));
        assert!(!d.write && d.change.is_none() && d.item.watched);
    }

    #[test]
    fn console_unmark_is_a_persons_unplay() {
        let d = mark(&stored(true, NOW - 10), "ana", false, at(NOW));
        assert!(has_unplay(&d.item));
        assert_eq!(d.item.unplayed_at, Some(at(NOW)));
    }
}
