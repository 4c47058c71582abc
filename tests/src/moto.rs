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

/// moto's app under werkzeug's single-threaded server, with the launcher's patches.
const SERIAL: &str = "
import sys, importlib.util
spec = importlib.util.spec_from_file_location('launcher', sys.argv[3])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher._patch()
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False)
";

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

/// The `SdkConfig` the functions build (`watchstate::inbound::config::aws_sdk_config`),
/// pointed at a moto `endpoint` with dummy keys: the tests' clients go the same way.
pub fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    use watchstate::inbound::config::{aws_sdk_config, AwsKeys, AwsSettings};
    aws_sdk_config(&AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_string()),
        keys: Some(AwsKeys {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
    })
}

impl Moto {
    /// [`sdk_config`] of this server.
    pub fn sdk_config(&self) -> aws_types::SdkConfig {
        sdk_config(&self.endpoint())
    }

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

    /// moto on a single-threaded server: threaded moto checks a write's condition and
    /// applies it without a lock, so two concurrent conditional writes can both pass
    /// (DynamoDB's are atomic). Tests of concurrent claims use this one.
    pub fn start_serial() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-c", SERIAL, "127.0.0.1", &port.to_string(), LAUNCHER])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto (pip install 'moto[server]')");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(moto.child.try_wait(), Ok(Some(_))) {
                moto.stop();
                panic!("serial moto did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
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
