//! Parse + normalize a webhook, per source, against `serde_json::from_slice::<Value>`
//! of the same bytes in the same run (docs/PERFORMANCE.md: no slower than that baseline).
//! `cargo bench -p watchstate --bench parse`; the ratio table prints at the end.

use std::path::{Path, PathBuf};

use chrono::Utc;
use std::hint::black_box;

use criterion::Criterion;
use watchstate::adapters::media;
use watchstate::domain::model::Source;

const CASES: [(&str, Source, &str); 4] = [
    (
        "plex",
        Source::Plex,
        "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
    ),
    (
        "tautulli",
        Source::Tautulli,
        "written/tautulli/watched-episode.json",
    ),
    (
        "jellyfin",
        Source::Jellyfin,
        "webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json",
    ),
    (
        "emby",
        Source::Emby,
        "webhooks/emby/playback.stop-movie-4.7.11-formdata-movary.json",
    ),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn bench(c: &mut Criterion) {
    let now = Utc::now();
    for (name, source, file) in CASES {
        let bytes = std::fs::read(fixtures().join(file)).expect("fixture");
        assert!(media::parse(source, &bytes, now).is_ok(), "{file} parses");
        let mut g = c.benchmark_group(name);
        g.bench_function("parse", |b| {
            b.iter(|| media::parse(source, black_box(&bytes), now))
        });
        g.bench_function("serde_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)))
        });
        g.finish();
    }
}

/// Criterion's point estimate (ns) of one benchmark of this run.
fn estimate(target: &Path, group: &str, function: &str) -> Option<f64> {
    let p = target
        .join("criterion")
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    println!("\nsource     parse (ns)  Value (ns)  ratio parse/Value");
    for (name, _, file) in CASES {
        let bytes = std::fs::metadata(fixtures().join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        match (
            estimate(&target, name, "parse"),
            estimate(&target, name, "serde_value"),
        ) {
            (Some(p), Some(v)) => println!(
                "{name:<10} {p:>10.0}  {v:>10.0}  {:>6.2}   ({bytes} bytes)",
                p / v
            ),
            _ => println!("{name:<10} (no estimate: run without a filter)"),
        }
    }
}
