//! Import benchmark (docs/PERFORMANCE.md): 100,000 items from the fake Plex server into the
//! embedded store (a SQLite file in a temporary directory), through the real Plex
//! client and the real import code. Reports, in one run:
//!
//! - baseline: paging through the whole library with the client, storing nothing
//!   (what fetching and parsing alone cost);
//! - first import: items per second, HTTP requests, store writes (item rows and
//!   batches), outbox entries, and the ratio import time / fetch time;
//! - second import of the unchanged library: time, requests and store writes (0).
//!
//! `cargo bench -p e2e --bench import` (`IMPORT_BENCH_ITEMS` to change the size).
//! Budget: the first import under 60 s on a 2-core machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use e2e::fake::FakeServer;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{client_with, http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::tasks::import::{ImportOptions, ImportReport, Importer};
use watchstate::app::tasks::{Budget, Deps, TaskPayload};
use watchstate::domain::model::BackendKind;
use watchstate::ports::media::PageRequest;
use watchstate::ports::store::Store;

fn main() {
    let n: usize = std::env::var("IMPORT_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench(n));
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn bench(n: usize) {
    let t = Instant::now();
    let plex = FakeServer::with_generated(BackendKind::Plex, n).await;
    println!(
        "fake Plex with {n} items ({} catalogue entries with series) built in {:.2?}",
        plex.len(),
        t.elapsed()
    );
    let http = http_client_with(Duration::from_secs(5), Duration::from_secs(60));
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("watchstate.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("store"));
    store.put_user("bench", Utc::now()).await.expect("user");
    let mut backend = plex.backend("bench", "plex");
    backend.webhook_token_hash = "bench-hash".into();
    backend.import.enabled = true;
    store.put_backend(&backend).await.expect("backend");

    // Baseline: the same walk through the same client, nothing stored.
    plex.clear_calls();
    let client = client_with(&backend, http.clone(), RetryPolicy::default());
    let t = Instant::now();
    let mut request = Some(PageRequest::first(PageRequest::DEFAULT_LIMIT));
    let (mut pages, mut seen) = (0u64, 0u64);
    while let Some(r) = request {
        let page = client.library_page(&r).await.expect("page");
        pages += 1;
        seen += page.items.len() as u64;
        request = page.next;
    }
    let fetch = t.elapsed();
    let fetch_requests = plex.calls().len();
    println!(
        "baseline fetch only: {seen} items, {pages} pages, {fetch_requests} HTTP requests in {fetch:.2?} ({:.0} items/s)",
        rate(seen, fetch)
    );
    assert_eq!(seen as usize, n, "the walk sees every item");

    let deps = Deps {
        store: store.clone(),
        clients: Arc::new(HttpClients {
            http,
            retry: RetryPolicy::default(),
        }),
        bus: None,
    };
    let importer = Importer::new(&deps, ImportOptions::default());
    let run = |label: &'static str| {
        let importer = &importer;
        let plex = &plex;
        async move {
            plex.clear_calls();
            let t = Instant::now();
            let report: ImportReport = importer
                .run(&TaskPayload::default(), Budget::unlimited())
                .await
                .expect("import");
            let took = t.elapsed();
            let requests = plex.calls().len();
            let b = &report.backends[0];
            let c = b.counts;
            println!(
                "{label}: {} items in {took:.2?} = {:.0} items/s; {requests} HTTP requests; \
                 store writes: {} item rows in {} batches + {} single writes; created {}, changed {}, \
                 updated {}, outbox entries {}; status {:?}",
                c.items_seen,
                rate(c.items_seen, took),
                c.writes,
                c.batches,
                c.writes.saturating_sub(c.created),
                c.created,
                c.changed,
                c.updated,
                c.pushed,
                b.status
            );
            (took, report)
        }
    };
    let (first, r1) = run("first import").await;
    assert!(r1.complete());
    assert_eq!(r1.backends[0].counts.created as usize, n);
    let store_cost = first.saturating_sub(fetch);
    println!(
        "ratio store cost / fetch cost: {:.2} (import {first:.2?} = fetch {fetch:.2?} + store {store_cost:.2?}; import/fetch {:.2})",
        store_cost.as_secs_f64() / fetch.as_secs_f64(),
        first.as_secs_f64() / fetch.as_secs_f64()
    );
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("watchstate.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("store file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    let (_second, r2) = run("second import (unchanged)").await;
    assert_eq!(
        r2.backends[0].counts.writes, 0,
        "an unchanged library writes nothing"
    );
    println!(
        "budget: first import {first:.2?} of 60 s: {}",
        if first < Duration::from_secs(60) {
            "within"
        } else {
            "OVER"
        }
    );
}
