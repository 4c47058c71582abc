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

/// Ben's account on the fake Plex server (a second person of the household), and
/// the Plex token of his own that the console asks for.
const BEN: &str = "23456789";
const BENS_PLEX_TOKEN: &str = "bens-own-plex-token";
/// Cleo's account on the fake Jellyfin server (added with the server's API key).
const CLEO: &str = "c1e0c1e0c1e0c1e0c1e0c1e0c1e0c1e0";

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
    plex.add_user(BENS_PLEX_TOKEN, BEN);
    let jellyfin = FakeServer::with_sample(BackendKind::Jellyfin).await;
    jellyfin.add_account(&jellyfin.user_id(), "Ana");
    jellyfin.add_account(CLEO, "Cleo");
    let emu = Emulator::start(&[]).await;
    let mut plex_json = describe(&plex);
    plex_json["accounts"] = json!({"ana": plex.user_id(), "ben": BEN});
    plex_json["ben_token"] = json!(BENS_PLEX_TOKEN);
    let mut jellyfin_json = describe(&jellyfin);
    jellyfin_json["accounts"] = json!({"ana": jellyfin.user_id(), "cleo": CLEO});
    println!(
        "{}",
        json!({
            "console": emu.url("/lambda-url/api/"),
            "base": emu.url(""),
            "admin_key": emu.admin_key,
            "plex": plex_json,
            "jellyfin": jellyfin_json,
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
        .map(|c| {
            // Which token a call carried (Plex: the account's own), to check who it
            // acted as; the browser test never shows it on the page.
            let token = c
                .header("x-plex-token")
                .or_else(|| c.header("x-emby-token"))
                .or_else(|| c.header("authorization"));
            json!({"method": c.method, "path": c.path, "query": c.query, "token": token})
        })
        .collect();
    json!({ "calls": calls })
}
