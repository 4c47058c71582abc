//! The real function binaries under `cargo lambda watch`, as `make run` serves them,
//! on a free loopback port with a private data dir.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub port: u16,
    pub admin_key: String,
    pub data_dir: tempfile::TempDir,
    pub log: PathBuf,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Emulator {
    /// Start `cargo lambda watch` with extra environment; waits until the api answers.
    pub async fn start(env: &[(&str, String)]) -> Emulator {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let admin_key = "e2e-admin-key".to_string();
        let log = data_dir.path().join("watch.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new("cargo");
        cmd.args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .current_dir(workspace_root())
        .env("WATCHSTATE_DATA_DIR", data_dir.path())
        .env("WATCHSTATE_ADMIN_KEY", &admin_key)
        .env("WATCHSTATE_TOKEN_SECRET", "e2e-secret")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so the functions it spawns die with it.
        .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .expect("cargo lambda watch (pip install cargo-lambda)");
        let emu = Emulator {
            child,
            port,
            admin_key,
            data_dir,
            log,
        };
        emu.wait_healthy().await;
        emu
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_healthy(&self) {
        let client = crate::http_client();
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if let Ok(r) = client
                .get(self.url("/lambda-url/api/v1/health"))
                .timeout(Duration::from_secs(120))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "cargo lambda watch did not answer; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // TERM lets cargo-lambda stop the function processes it started (they run in
        // process groups of their own); KILL the group if it does not go in time.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.wait();
    }
}
