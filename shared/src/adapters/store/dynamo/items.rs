//! Reading items: through the `B#` copies (one round trip for a known item), by
//! id, every owner of a set of keys, paged listings.

#[allow(unused_imports)]
use super::*;

impl DynamoStore {
    pub(super) async fn load_item(&self, user: &str, id: &str) -> Result<Option<Item>> {
        let Some(r) = self.get(key(item_pk(user), id)).await? else {
            return Ok(None);
        };
        let (item, bkeys) = parse_item(&r)?;
        self.remember(user, &item.id, item.version, &bkeys);
        Ok(Some(item))
    }

    /// The item copy a `B#` record holds, if it is a copy of the record's owner.
    pub(super) fn copy_in(&self, user: &str, r: &Record, owner: &str) -> Result<Option<Item>> {
        if !r.contains_key("data") {
            return Ok(None);
        }
        let (item, bkeys) = parse_item(r)?;
        if item.id != owner {
            return Ok(None);
        }
        self.remember(user, &item.id, item.version, &bkeys);
        Ok(Some(item))
    }

    /// The item's `B#` keys holding copies, as remembered from its read or read again;
    /// `None` when it is no longer at version `v`.
    pub(super) async fn copies_of(
        &self,
        user: &str,
        id: &str,
        v: u64,
    ) -> Result<Option<Vec<String>>> {
        if let Some(b) = self.remembered(user, id, v) {
            return Ok(Some(b));
        }
        let Some(r) = self.get(key(item_pk(user), id)).await? else {
            return Ok(None);
        };
        let (stored, b) = parse_item(&r)?;
        Ok((stored.version == v).then_some(b))
    }

    pub(super) async fn find_item(&self, user: &str, keys: &[String]) -> Result<Option<Item>> {
        let pointers = self.pointers(user, keys).await?;
        for k in keys {
            let Some(r) = pointers.get(&(pointer_pk(user, k), "K".to_string())) else {
                continue;
            };
            if let Some(item) = self.pointed(user, k, r).await? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// The pointer records of `keys`, in one BatchGetItem.
    async fn pointers(
        &self,
        user: &str,
        keys: &[String],
    ) -> Result<HashMap<(String, String), Record>> {
        let unique: BTreeSet<&String> = keys.iter().collect();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        self.batch_get(
            unique
                .iter()
                .map(|k| key(pointer_pk(user, k), "K"))
                .collect(),
        )
        .await
    }

    /// The item pointer `r` (of key `k`) names: from its `B#` copy when that is
    /// current, else its own record.
    async fn pointed(&self, user: &str, k: &str, r: &Record) -> Result<Option<Item>> {
        let owner = get_s(r, "item")?;
        if is_backend_key(k) {
            if let Some(item) = self.copy_in(user, r, owner)? {
                return Ok(Some(item));
            }
        }
        self.load_item(user, owner).await
    }

    pub(super) async fn get_item(&self, user: &str, id: &str) -> Result<Option<Item>> {
        self.load_item(user, id).await
    }

    /// One BatchGetItem for all pointers (as [`Store::find_item`](crate::ports::store::Store::find_item)); each distinct owner
    /// then from a `B#` copy or its record: a report reaching one item costs the same.
    pub(super) async fn find_items(&self, user: &str, keys: &[String]) -> Result<Vec<Item>> {
        let pointers = self.pointers(user, keys).await?;
        let mut out: Vec<Item> = Vec::new();
        for k in keys {
            let Some(r) = pointers.get(&(pointer_pk(user, k), "K".to_string())) else {
                continue;
            };
            let owner = get_s(r, "item")?;
            if out.iter().any(|i| i.id == owner) {
                continue;
            }
            out.extend(self.pointed(user, k, r).await?);
        }
        Ok(out)
    }

    pub(super) async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Item>> {
        let limit = limit.clamp(1, 1000);
        let after = cursor.filter(|c| !c.is_empty());
        let mut items = Vec::with_capacity(limit + 1);
        let more = match query {
            ItemQuery::All => {
                let records = self
                    .query(&item_pk(user), after, true, Some(limit + 1), None)
                    .await?;
                let more = records.len() > limit;
                for r in records.iter().take(limit) {
                    let (item, bkeys) = parse_item(r)?;
                    self.remember(user, &item.id, item.version, &bkeys);
                    items.push(item);
                }
                more
            }
            ItemQuery::Keys(keys) => {
                let unique: BTreeSet<&String> = keys.iter().collect();
                let pointers = self
                    .batch_get(
                        unique
                            .iter()
                            .map(|k| key(pointer_pk(user, k), "K"))
                            .collect(),
                    )
                    .await?;
                let mut ids = BTreeSet::new();
                for r in pointers.values() {
                    let id = get_s(r, "item")?;
                    if after.is_none_or(|a| id > a) {
                        ids.insert(id.to_string());
                    }
                }
                let more = ids.len() > limit;
                let wanted: Vec<&String> = ids.iter().take(limit).collect();
                let records = self
                    .batch_get(wanted.iter().map(|id| key(item_pk(user), *id)).collect())
                    .await?;
                let pk = item_pk(user);
                for id in wanted {
                    if let Some(r) = records.get(&(pk.clone(), id.clone())) {
                        let (item, bkeys) = parse_item(r)?;
                        self.remember(user, &item.id, item.version, &bkeys);
                        items.push(item);
                    }
                }
                more
            }
        };
        let cursor = if more {
            items.last().map(|i| i.id.clone())
        } else {
            None
        };
        Ok(Page { items, cursor })
    }
}
