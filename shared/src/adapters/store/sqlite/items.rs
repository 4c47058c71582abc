//! The rows an item write touches: the item (conditional on its version), its lookup
//! keys (claimed only while free) and the change beside it in the outbox.

use rusqlite::{params, Connection, OptionalExtension};

use super::{from_json, to_json, unavailable};
use crate::domain::model::{Item, StateChange};
use crate::ports::store::{ItemWrite, Result};

/// Update a stored item if it still has version `v`, claiming its free new keys.
pub(super) fn update_item(
    tx: &rusqlite::Transaction<'_>,
    w: &ItemWrite<'_>,
    v: u64,
) -> Result<bool> {
    let mut stored = w.item.clone();
    stored.version = v + 1;
    let n = tx
        .prepare_cached(
            "UPDATE items SET version = ?4, data = ?5
             WHERE user = ?1 AND id = ?2 AND version = ?3",
        )
        .map_err(unavailable)?
        .execute(params![
            w.user,
            stored.id,
            v as i64,
            (v + 1) as i64,
            to_json(&stored)?
        ])
        .map_err(unavailable)?;
    if n == 0 {
        return Ok(false);
    }
    let mut put = tx
        .prepare_cached("INSERT OR IGNORE INTO item_keys(user, key, item_id) VALUES (?1, ?2, ?3)")
        .map_err(unavailable)?;
    for k in w.new_keys {
        put.execute(params![w.user, k, stored.id])
            .map_err(unavailable)?;
    }
    Ok(true)
}

/// Insert a new item with its keys; false (and nothing written) if any key is taken.
pub(super) fn insert_item(
    conn: &Connection,
    user: &str,
    item: &Item,
    keys: &[String],
) -> Result<bool> {
    {
        let mut taken = conn
            .prepare_cached("SELECT 1 FROM item_keys WHERE user = ?1 AND key = ?2")
            .map_err(unavailable)?;
        for k in keys {
            if taken.exists(params![user, k]).map_err(unavailable)? {
                return Ok(false);
            }
        }
    }
    let mut stored = item.clone();
    stored.version = 1;
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO items(user, id, version, data) VALUES (?1, ?2, 1, ?3)",
        )
        .map_err(unavailable)?
        .execute(params![user, stored.id, to_json(&stored)?])
        .map_err(unavailable)?;
    if n == 0 {
        return Ok(false);
    }
    let mut put = conn
        .prepare_cached("INSERT INTO item_keys(user, key, item_id) VALUES (?1, ?2, ?3)")
        .map_err(unavailable)?;
    for k in keys {
        put.execute(params![user, k, stored.id])
            .map_err(unavailable)?;
    }
    Ok(true)
}

pub(super) fn load_item(conn: &Connection, user: &str, id: &str) -> Result<Option<Item>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, data FROM items WHERE user = ?1 AND id = ?2")
        .map_err(unavailable)?
        .query_row(params![user, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(unavailable)?;
    match row {
        None => Ok(None),
        Some((version, data)) => {
            let mut item: Item = from_json(&data)?;
            item.version = version.max(0) as u64;
            Ok(Some(item))
        }
    }
}

pub(super) fn put_outbox(conn: &Connection, change: &StateChange) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox(id, seq, data)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2)",
    )
    .map_err(unavailable)?
    .execute(params![change.id, to_json(change)?])
    .map_err(unavailable)?;
    Ok(())
}
