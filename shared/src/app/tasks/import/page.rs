//! One page of a library walk: fetched with its time, merged entry by entry by the
//! rules (`domain::sync::listing`), new items in one batch, changed ones written
//! conditionally with their change.

#[allow(unused_imports)]
use super::*;

/// Whether the backend no longer has the entry recorded for an item (404): a replaced
/// or upgraded file got a new id. Any other answer keeps the recorded entry.
pub(super) async fn recorded_is_gone(client: &dyn MediaClient, id: &str) -> bool {
    match client.item(id).await {
        Ok(None) => true,
        Ok(Some(_)) => false,
        Err(e) => e.is_not_found(),
    }
}

pub(super) fn sample(samples: &mut Vec<String>, item: &Item, backend: &str, what: &str) {
    if samples.len() >= MAX_SAMPLES {
        return;
    }
    let title = match (&item.series_title, item.season, item.episode) {
        (Some(s), Some(se), Some(ep)) => format!("{s} S{se:02}E{ep:02}"),
        _ => item.title.clone().unwrap_or_else(|| item.id.clone()),
    };
    samples.push(format!(
        "{title}: {what} on {backend} (watched: {})",
        item.watched
    ));
}

/// The lookup keys of a remote item, strongest first (as a webhook's).
pub(crate) fn remote_keys(backend: &str, r: &RemoteItem) -> Vec<String> {
    let ev = EventItem {
        kind: Some(r.kind),
        backend_item_id: r.id.clone(),
        title: None,
        year: None,
        series_title: None,
        season: r.season,
        episode: r.episode,
        guids: r.guids.clone(),
        series_guids: r.series_guids.clone(),
        played: None,
        progress_ms: None,
        duration_ms: None,
        last_played_at: None,
    };
    sync::event_keys(backend, &ev)
}

impl Importer {
    /// One page, tried again with backoff while the error is worth it.
    pub(super) async fn fetch(
        &self,
        client: &dyn MediaClient,
        request: &PageRequest,
        budget: Budget,
    ) -> Result<LibraryPage, ClientError> {
        let attempts = self.options.page_attempts.max(1);
        let mut delay = self.options.page_backoff;
        let mut attempt = 1;
        loop {
            match client.library_page(request).await {
                Ok(p) => return Ok(p),
                Err(e) if e.retryable() && attempt < attempts && !budget.expired() => {
                    tracing::debug!(error = %e, attempt, "import page failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Merge one page into the store: known items one conditional write each (only if
    /// changed), new ones in one batch.
    pub(super) async fn merge_page(
        &self,
        client: &dyn MediaClient,
        ctx: Listed<'_>,
        items: &[RemoteItem],
        dry_run: bool,
        counts: &mut ImportCounts,
        samples: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        // New items of this page, and which of their keys point where (a duplicate
        // later in the page joins the pending item instead of making a second one).
        let mut pending: Vec<(Merged, Vec<usize>, Vec<String>)> = Vec::new();
        let mut pending_keys: HashMap<String, usize> = HashMap::new();
        for (i, r) in items.iter().enumerate() {
            counts.items_seen += 1;
            let keys = remote_keys(ctx.backend, r);
            let found =
                ingest::find_match(self.store.as_ref(), ctx.user, &keys, r.identity()).await?;
            if found.item.is_some() {
                self.apply(client, ctx, r, &keys, Some(found), dry_run, counts, samples)
                    .await?;
                continue;
            }
            let foreign = found.foreign;
            let joins = keys
                .iter()
                .filter(|k| !foreign.contains(k))
                .find_map(|k| pending_keys.get(k))
                .copied()
                .filter(|&p| !contradicts(&pending[p].0.item, r.identity()));
            if let Some(p) = joins {
                let m = listing::merge(
                    Some(&pending[p].0.item),
                    r,
                    ctx,
                    false,
                    crate::domain::ids::new_id,
                );
                if m.effect != Effect::Unchanged {
                    pending[p].0.item = m.item;
                    if m.change.is_some() {
                        pending[p].0.change = m.change;
                    }
                    for k in sync::item_keys(&pending[p].0.item) {
                        pending_keys.entry(k).or_insert(p);
                    }
                }
                pending[p].1.push(i);
                continue;
            }
            let m = listing::merge(None, r, ctx, false, crate::domain::ids::new_id);
            let p = pending.len();
            for k in sync::item_keys(&m.item) {
                if !foreign.contains(&k) {
                    pending_keys.entry(k).or_insert(p);
                }
            }
            pending.push((m, vec![i], foreign));
        }
        if pending.is_empty() {
            return Ok(());
        }
        if dry_run {
            for (m, _, _) in &pending {
                counts.created += 1;
                if m.change.is_some() {
                    counts.pushed += 1;
                }
                sample(samples, &m.item, ctx.backend, "new");
            }
            return Ok(());
        }
        let keys: Vec<Vec<String>> = pending
            .iter()
            .map(|(m, _, foreign)| ingest::keys_to_claim(None, &m.item, foreign))
            .collect();
        let writes: Vec<ItemWrite<'_>> = pending
            .iter()
            .zip(&keys)
            .map(|((m, _, _), k)| ItemWrite {
                user: ctx.user,
                item: &m.item,
                expected_version: None,
                new_keys: k,
                change: m.change.as_ref(),
            })
            .collect();
        let outcomes = self.store.create_items_batch(&writes).await?;
        counts.batches += 1;
        let mut retry = Vec::new();
        for ((m, sources, _), outcome) in pending.iter().zip(&outcomes) {
            if *outcome == WriteOutcome::Written {
                counts.created += 1;
                counts.writes += 1;
                if m.change.is_some() {
                    counts.pushed += 1;
                }
            } else {
                // A key was taken meanwhile (a webhook created the item): merge into
                // that item, one remote entry at a time.
                retry.extend(sources.iter().copied());
            }
        }
        for i in retry {
            let r = &items[i];
            let keys = remote_keys(ctx.backend, r);
            self.apply(client, ctx, r, &keys, None, dry_run, counts, samples)
                .await?;
        }
        Ok(())
    }

    /// Read → merge → conditional write for one remote item, re-reading on conflict.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply(
        &self,
        client: &dyn MediaClient,
        ctx: Listed<'_>,
        r: &RemoteItem,
        keys: &[String],
        found: Option<ingest::Found>,
        dry_run: bool,
        counts: &mut ImportCounts,
        samples: &mut Vec<String>,
    ) -> Result<Effect, StoreError> {
        // The caller's lookup serves the first attempt; a retry looks again.
        let mut first = found;
        // Whether the recorded entry is gone, asked once per entry.
        let gone: std::sync::Mutex<Option<(String, bool)>> = std::sync::Mutex::new(None);
        let gone = &gone;
        let store = self.store.as_ref();
        let done = ingest::write_conditionally(
            store,
            ctx.user,
            || {
                let first = first.take();
                Box::pin(async move {
                    let found = match first {
                        Some(f) => f,
                        None => ingest::find_match(store, ctx.user, keys, r.identity()).await?,
                    };
                    let existing = found.item.as_ref();
                    // Another entry than the recorded one: is the recorded one still
                    // there (a duplicate), or gone (a replaced file)?
                    let recorded = existing
                        .and_then(|i| i.backends.get(ctx.backend))
                        .and_then(|s| s.item_id.clone())
                        .filter(|id| *id != r.id);
                    let cached = |id: &str| {
                        gone.lock()
                            .ok()
                            .and_then(|g| g.clone())
                            .filter(|(known, _)| known == id)
                            .map(|(_, g)| g)
                    };
                    let recorded_gone = match recorded {
                        None => false,
                        Some(id) => match cached(&id) {
                            Some(g) => g,
                            None => {
                                let g = recorded_is_gone(client, &id).await;
                                if let Ok(mut slot) = gone.lock() {
                                    *slot = Some((id, g));
                                }
                                g
                            }
                        },
                    };
                    Ok(ingest::Read::found(found, recorded_gone))
                })
            },
            |read| {
                let m = listing::merge(
                    read.existing.as_ref(),
                    r,
                    ctx,
                    read.extra,
                    crate::domain::ids::new_id,
                );
                let write = m.effect != Effect::Unchanged && !dry_run;
                Planned {
                    item: write.then(|| m.item.clone()),
                    change: m.change.clone().filter(|_| write),
                    outcome: m,
                }
            },
        )
        .await?;
        let m = done.outcome;
        if done.written {
            counts.writes += 1;
        }
        match m.effect {
            Effect::Created => {
                counts.created += 1;
                sample(samples, &m.item, ctx.backend, "new");
            }
            Effect::Changed { watched } => {
                counts.changed += 1;
                if !watched {
                    counts.unplayed += 1;
                }
                sample(
                    samples,
                    &m.item,
                    ctx.backend,
                    if watched { "played" } else { "unplayed" },
                );
            }
            Effect::Updated => counts.updated += 1,
            Effect::Unchanged => {}
        }
        if m.change.is_some() {
            counts.pushed += 1;
        }
        Ok(m.effect)
    }
}
