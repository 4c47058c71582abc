//! What the browser tests (`tests/browser/`) run against: the real function binaries
//! under `cargo lambda watch` (as `make run` serves them, on a free port with a private
//! data dir) and a fake Plex and a fake Jellyfin server with the sample catalogue.
//!
//! Prints one JSON line with the console's address, the admin key and each fake
//! server's URL, token, ids and accounts; then answers commands on stdin, one JSON
//! line each: `calls plex` / `calls jellyfin` (every call the fake received). Stops on
//! `quit` or at the end of stdin, taking the emulator down with it.

use e2e::emulator::Emulator;
use e2e::fake::{FakeServer, MOVIE};
use serde_json::json;
use watchstate::domain::model::BackendKind;

/// Ben's account on the fake Plex server (a second person of the household).
const BEN: &str = "23456789";

fn describe(fake: &FakeServer) -> serde_json::Value {
    json!({
        "url": fake.url(),
        "token": fake.token(),
        "server_id": fake.server_id(),
        "user_id": fake.user_id(),
        "movie_id": fake.id(MOVIE),
    })
}

#[tokio::main]
async fn main() {
    let plex = FakeServer::with_sample(BackendKind::Plex).await;
    plex.add_account(&plex.user_id(), "Ana");
    plex.add_account(BEN, "Ben");
    let jellyfin = FakeServer::with_sample(BackendKind::Jellyfin).await;
    jellyfin.add_account(&jellyfin.user_id(), "Ana");
    let emu = Emulator::start(&[]).await;
    let mut plex_json = describe(&plex);
    plex_json["accounts"] = json!({"ana": plex.user_id(), "ben": BEN});
    println!(
        "{}",
        json!({
            "console": emu.url("/lambda-url/api/"),
            "base": emu.url(""),
            "admin_key": emu.admin_key,
            "plex": plex_json,
            "jellyfin": describe(&jellyfin),
        })
    );
    loop {
        // std's stdin on a blocking thread: the fakes keep serving meanwhile.
        let read = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|n| (n, line))
        })
        .await;
        let line = match read {
            Ok(Ok((n, line))) if n > 0 => line,
            _ => break,
        };
        let answer = match line.trim() {
            "quit" => break,
            "calls plex" => calls(&plex),
            "calls jellyfin" => calls(&jellyfin),
            "log" => json!({"log": emu.log_text()}),
            other => json!({"error": format!("unknown command '{other}'")}),
        };
        println!("{answer}");
    }
}

fn calls(fake: &FakeServer) -> serde_json::Value {
    let calls: Vec<_> = fake
        .calls()
        .into_iter()
        .map(|c| json!({"method": c.method, "path": c.path, "query": c.query}))
        .collect();
    json!({ "calls": calls })
}
