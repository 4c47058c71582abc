//! moto server on a free loopback port, started for a test and stopped with it.
//! It speaks the real DynamoDB, EventBridge, SQS, KMS and SSM wire protocols
//! (`make test` installs it with `pip install 'moto[server]'`).
//!
//! It runs through `tests/moto_server.py`, which makes two of moto's hot spots cheap
//! without changing any answer (EventBridge re-parsing constant JSONPath expressions
//! for every event, SQS reading the clock per message): a 20,000-change fan-out then
//! takes minutes, not hours. Without `python3` it falls back to `moto_server`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::emulator::free_port;

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// The launcher next to this crate's sources.
const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_server.py");

fn spawn(program: &str, pre: &[&str], port: u16) -> std::io::Result<Child> {
    Command::new(program)
        .args(pre)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let mut child = match spawn("python3", &[LAUNCHER], port) {
            Ok(c) => c,
            Err(_) => {
                spawn("moto_server", &[], port).expect("moto_server (pip install 'moto[server]')")
            }
        };
        let mut fell_back = false;
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            // The launcher's python3 has no moto: the plain entry point may.
            if !fell_back && matches!(child.try_wait(), Ok(Some(_))) {
                fell_back = true;
                child = spawn("moto_server", &[], port)
                    .expect("moto_server (pip install 'moto[server]')");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop the server (to test what happens when AWS cannot be reached).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
