//! Writing items: a conditional write prepared as one transaction (item, `B#`
//! copies, new lookup keys, outbox row), merging one item into another, new items
//! in batches.

#[allow(unused_imports)]
use super::*;

/// What an item write puts into each `B#` record.
pub(super) struct Copy<'a> {
    pub(super) id: &'a str,
    pub(super) data: &'a str,
    pub(super) version: u64,
    pub(super) bkeys: &'a [String],
}

/// Lookup keys an item write takes over from an item it absorbs.
pub(super) struct Taken<'a> {
    pub(super) from: &'a str,
    pub(super) keys: BTreeSet<String>,
}

/// An item write ready to send (see [`DynamoStore::prepare`]).
pub(super) struct Prepared {
    pub(super) ops: Vec<TransactWriteItem>,
    /// Lookup keys that did not fit into the transaction.
    pub(super) overflow: Vec<String>,
    /// `(pk, sk)` of every record the transaction writes.
    pub(super) records: Vec<(String, String)>,
    /// Roughly how many bytes the transaction sends.
    pub(super) bytes: usize,
    pub(super) data: String,
    pub(super) version: u64,
    pub(super) bkeys: Vec<String>,
}

impl DynamoStore {
    /// The lookup-key record of `k` pointing at `item`, with a copy for `B#` keys.
    pub(super) fn pointer_put(&self, user: &str, k: &str, copy: &Copy<'_>) -> Record {
        let mut r = key(pointer_pk(user, k), "K");
        r.insert("item".into(), s(copy.id));
        if is_backend_key(k) {
            r.insert("data".into(), s(copy.data));
            r.insert("version".into(), n(copy.version));
            r.insert("bkeys".into(), list(copy.bkeys));
        }
        r
    }

    /// Take the lookup key `k` for `id` unless another item owns it; for `B#` keys
    /// (re)write the copy.
    pub(super) fn pointer_update(
        &self,
        user: &str,
        k: &str,
        copy: &Copy<'_>,
    ) -> Result<TransactWriteItem> {
        let mut expr = Expr::new("SET #item = if_not_exists(#item, :id)")
            .name("#item", "item")
            .value(":id", s(copy.id));
        if is_backend_key(k) {
            expr.text
                .push_str(", #data = :data, #version = :version, #bkeys = :bkeys");
            expr = expr
                .name("#data", "data")
                .name("#version", "version")
                .name("#bkeys", "bkeys")
                .value(":data", s(copy.data))
                .value(":version", n(copy.version))
                .value(":bkeys", list(copy.bkeys));
        }
        self.update(key(pointer_pk(user, k), "K"), expr)
    }

    /// Hand the lookup key `k` from item `from` to the copy's item (a merge).
    pub(super) fn pointer_take(
        &self,
        user: &str,
        k: &str,
        copy: &Copy<'_>,
        from: &str,
    ) -> Result<TransactWriteItem> {
        let cond = Expr::new("#item = :from")
            .name("#item", "item")
            .value(":from", s(from));
        self.put(self.pointer_put(user, k, copy), Some(cond))
    }

    /// The one transaction of an item write: the item (conditional on its version, or
    /// on not existing), the outbox record, a copy in every `B#` record (`bkeys`, which
    /// the item's new `B#` keys join) and the new lookup keys; keys that do not fit are
    /// left for [`Self::write_overflow`].
    pub(super) fn prepare(
        &self,
        w: &ItemWrite<'_>,
        mut bkeys: BTreeSet<String>,
        take: Option<&Taken<'_>>,
    ) -> Result<Prepared> {
        let user = w.user;
        let id = w.item.id.as_str();
        let new_keys: BTreeSet<&String> = w.new_keys.iter().collect();
        let version = w.expected_version.map_or(1, |v| v + 1);
        bkeys.extend(
            new_keys
                .iter()
                .filter(|k| is_backend_key(k))
                .map(|k| k.to_string()),
        );
        let bkeys: Vec<String> = bkeys.into_iter().collect();
        let mut stored = w.item.clone();
        stored.version = version;
        let data = to_json(&stored)?;
        let copy = Copy {
            id,
            data: &data,
            version,
            bkeys: &bkeys,
        };

        let mut records = vec![(item_pk(user), id.to_string())];
        let mut record = key(item_pk(user), id);
        record.insert("data".into(), s(data.clone()));
        record.insert("version".into(), n(version));
        record.insert("bkeys".into(), list(&bkeys));
        let cond = match w.expected_version {
            None => absent(),
            Some(v) => Expr::new("#version = :expected")
                .name("#version", "version")
                .value(":expected", n(v)),
        };
        let mut ops = vec![self.put(record, Some(cond))?];
        if let Some(change) = w.change {
            ops.push(self.outbox_put(change)?);
            records.push((OUTBOX.to_string(), change.id.clone()));
        }
        // Copies first: they must be in the transaction.
        let mut overflow = Vec::new();
        let mut taken = Vec::new();
        match w.expected_version {
            None => {
                let ordered = new_keys
                    .iter()
                    .filter(|k| is_backend_key(k))
                    .chain(new_keys.iter().filter(|k| !is_backend_key(k)));
                for k in ordered {
                    if ops.len() < MAX_TX_ITEMS {
                        ops.push(self.put(self.pointer_put(user, k, &copy), Some(absent()))?);
                        taken.push(k.as_str());
                    } else if is_backend_key(k) {
                        return Err(corrupt(format!("item {id} has too many backend ids")));
                    } else {
                        overflow.push(k.to_string());
                    }
                }
            }
            Some(_) => {
                if ops.len() + bkeys.len() > MAX_TX_ITEMS {
                    return Err(corrupt(format!("item {id} has too many backend ids")));
                }
                // A key of an absorbed item changes hands (conditional on its owner);
                // any other is taken if free.
                let pointer = |k: &str| match take {
                    Some(t) if t.keys.contains(k) => self.pointer_take(user, k, &copy, t.from),
                    _ => self.pointer_update(user, k, &copy),
                };
                for k in &bkeys {
                    ops.push(pointer(k)?);
                    taken.push(k.as_str());
                }
                for k in new_keys.iter().filter(|k| !is_backend_key(k)) {
                    if ops.len() < MAX_TX_ITEMS {
                        ops.push(pointer(k)?);
                        taken.push(k.as_str());
                    } else {
                        overflow.push(k.to_string());
                    }
                }
            }
        }
        records.extend(
            taken
                .into_iter()
                .map(|k| (pointer_pk(user, k), "K".to_string())),
        );
        // The item's JSON goes into the item record and every copy.
        let bytes = data.len() * (1 + bkeys.len()) + 512 * ops.len();
        Ok(Prepared {
            ops,
            overflow,
            records,
            bytes,
            data,
            version,
            bkeys,
        })
    }

    /// Lookup keys that did not fit into the item's transaction: taken if free, after it.
    pub(super) async fn write_overflow(
        &self,
        user: &str,
        keys: &[String],
        copy: &Copy<'_>,
    ) -> Result<()> {
        for chunk in keys.chunks(MAX_TX_ITEMS) {
            let ops = chunk
                .iter()
                .map(|k| self.pointer_update(user, k, copy))
                .collect::<Result<Vec<_>>>()?;
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => {}
                Tx::Cancelled(codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems (extra lookup keys) cancelled: {codes:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    pub(super) async fn write_item(&self, w: ItemWrite<'_>) -> Result<WriteOutcome> {
        let (user, id) = (w.user, w.item.id.as_str());
        let bkeys = match w.expected_version {
            None => BTreeSet::new(),
            // Read elsewhere: learn which records hold copies.
            Some(v) => match self.copies_of(user, id, v).await? {
                Some(b) => b.into_iter().collect(),
                None => return Ok(WriteOutcome::Conflict),
            },
        };
        let p = self.prepare(&w, bkeys, None)?;
        match self.transact("TransactWriteItems", p.ops).await? {
            Tx::Done => {}
            Tx::Cancelled(codes) if Tx::conflicted(&codes) => return Ok(WriteOutcome::Conflict),
            Tx::Cancelled(codes) => {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB TransactWriteItems cancelled: {codes:?}"
                )))
            }
        }
        self.remember(user, id, p.version, &p.bkeys);
        if !p.overflow.is_empty() {
            tracing::info!(
                user,
                item = id,
                keys = p.overflow.len(),
                "lookup keys beyond one transaction"
            );
            let copy = Copy {
                id,
                data: &p.data,
                version: p.version,
                bkeys: &p.bkeys,
            };
            self.write_overflow(user, &p.overflow, &copy).await?;
        }
        Ok(WriteOutcome::Written)
    }

    /// One transaction: the kept item (on its version), the absorbed item deleted (on
    /// its version), each lookup key the absorbed item owns handed over (on its owner),
    /// the kept item's copies refreshed, its new keys taken if free, the change.
    pub(super) async fn absorb_item(
        &self,
        w: ItemWrite<'_>,
        absorbed: &Item,
    ) -> Result<WriteOutcome> {
        let (user, id) = (w.user, w.item.id.as_str());
        let Some(v) = w.expected_version else {
            return Ok(WriteOutcome::Conflict);
        };
        let Some(ours) = self.copies_of(user, id, v).await? else {
            return Ok(WriteOutcome::Conflict);
        };
        let Some(theirs) = self.copies_of(user, &absorbed.id, absorbed.version).await? else {
            return Ok(WriteOutcome::Conflict);
        };
        // Which of the absorbed item's keys it really owns (another item may own some).
        let candidates: BTreeSet<String> = crate::domain::sync::item_keys(absorbed)
            .into_iter()
            .chain(theirs.iter().cloned())
            .collect();
        let pointers = self
            .batch_get(
                candidates
                    .iter()
                    .map(|k| key(pointer_pk(user, k), "K"))
                    .collect(),
            )
            .await?;
        let owned: BTreeSet<String> = candidates
            .into_iter()
            .filter(|k| {
                pointers
                    .get(&(pointer_pk(user, k), "K".to_string()))
                    .and_then(|r| get_s(r, "item").ok())
                    == Some(absorbed.id.as_str())
            })
            .collect();
        let mut bkeys: BTreeSet<String> = ours.into_iter().collect();
        bkeys.extend(owned.iter().filter(|k| is_backend_key(k)).cloned());
        let mut new_keys: Vec<String> = w
            .new_keys
            .iter()
            .filter(|k| !bkeys.contains(*k))
            .cloned()
            .collect();
        new_keys.extend(
            owned
                .iter()
                .filter(|k| !is_backend_key(k) && !w.new_keys.iter().any(|n| n == *k))
                .cloned(),
        );
        let write = ItemWrite {
            new_keys: &new_keys,
            ..w
        };
        let take = Taken {
            from: &absorbed.id,
            keys: owned,
        };
        let mut p = self.prepare(&write, bkeys, Some(&take))?;
        if !p.overflow.is_empty() || p.ops.len() + 1 > MAX_TX_ITEMS {
            // Too many keys for one step: leave the two apart rather than half merge.
            tracing::info!(user, item = id, "merge beyond one transaction; not merged");
            return self.write_item(w).await;
        }
        let gone = Expr::new("#version = :expected")
            .name("#version", "version")
            .value(":expected", n(absorbed.version));
        p.ops
            .push(self.delete(key(item_pk(user), &absorbed.id), Some(gone))?);
        match self.transact("TransactWriteItems", p.ops).await? {
            Tx::Done => {}
            Tx::Cancelled(codes) if Tx::conflicted(&codes) => return Ok(WriteOutcome::Conflict),
            Tx::Cancelled(codes) => {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB TransactWriteItems (merge) cancelled: {codes:?}"
                )))
            }
        }
        self.remember(user, id, p.version, &p.bkeys);
        Ok(WriteOutcome::Written)
    }

    /// New items packed into as few transactions as fit (100 operations, no record
    /// twice): an import page of new items costs a few round trips, not one per item.
    /// A cancelled transaction names the items whose key was taken; those are
    /// conflicts and the rest go again.
    pub(super) async fn create_items_batch(
        &self,
        writes: &[ItemWrite<'_>],
    ) -> Result<Vec<WriteOutcome>> {
        let mut out: Vec<Option<WriteOutcome>> = vec![None; writes.len()];
        let mut prepared = Vec::with_capacity(writes.len());
        for w in writes {
            let create = ItemWrite {
                expected_version: None,
                ..*w
            };
            prepared.push(self.prepare(&create, BTreeSet::new(), None)?);
        }
        // Greedy groups in batch order, so an earlier item wins a key a later one wants.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let (mut size, mut bytes) = (0, 0);
        let mut records: BTreeSet<&(String, String)> = BTreeSet::new();
        for (i, p) in prepared.iter().enumerate() {
            let clash = p.records.iter().any(|r| records.contains(r));
            let full = size + p.ops.len() > MAX_TX_ITEMS || bytes + p.bytes > MAX_TX_BYTES;
            // An item with keys beyond one transaction goes alone (see `write_item`).
            let alone = !p.overflow.is_empty();
            if !group.is_empty() && (clash || full || alone) {
                groups.push(std::mem::take(&mut group));
                records.clear();
                (size, bytes) = (0, 0);
            }
            group.push(i);
            size += if alone { MAX_TX_ITEMS } else { p.ops.len() };
            bytes += p.bytes;
            records.extend(p.records.iter());
        }
        if !group.is_empty() {
            groups.push(group);
        }
        let mut prepared: Vec<Option<Prepared>> = prepared.into_iter().map(Some).collect();
        for mut group in groups {
            while group.len() > 1 {
                let mut ops = Vec::new();
                let mut owner = Vec::new();
                for &i in &group {
                    let p = prepared[i].as_ref().ok_or_else(|| corrupt("batch item"))?;
                    ops.extend(p.ops.iter().cloned());
                    owner.extend(std::iter::repeat_n(i, p.ops.len()));
                }
                match self.transact("TransactWriteItems", ops).await? {
                    Tx::Done => {
                        for &i in &group {
                            if let Some(p) = prepared[i].take() {
                                self.remember(writes[i].user, &writes[i].item.id, 1, &p.bkeys);
                            }
                            out[i] = Some(WriteOutcome::Written);
                        }
                        group.clear();
                    }
                    Tx::Cancelled(codes) if Tx::conflicted(&codes) => {
                        let taken: BTreeSet<usize> = codes
                            .iter()
                            .zip(&owner)
                            .filter(|(c, _)| c.as_deref() == Some("ConditionalCheckFailed"))
                            .map(|(_, i)| *i)
                            .collect();
                        if taken.is_empty() {
                            // Only concurrent transactions in the way: one by one.
                            break;
                        }
                        for &i in &taken {
                            out[i] = Some(WriteOutcome::Conflict);
                        }
                        group.retain(|i| !taken.contains(i));
                    }
                    Tx::Cancelled(codes) => {
                        return Err(StoreError::Unavailable(format!(
                            "DynamoDB TransactWriteItems cancelled: {codes:?}"
                        )))
                    }
                }
            }
            for i in group {
                out[i] = Some(
                    self.write_item(ItemWrite {
                        expected_version: None,
                        ..writes[i]
                    })
                    .await?,
                );
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| corrupt("batch item without outcome")))
            .collect()
    }
}
