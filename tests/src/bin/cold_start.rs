//! Cold-start benchmark (docs/PERFORMANCE.md): how long each function binary takes from exec to
//! its first poll of the Lambda Runtime API, next to a hello-world `lambda_runtime`
//! binary built with the same profile, and how big each stripped binary is.
//!
//! It builds nothing: it runs the binaries next to itself (target/release when started
//! with `cargo run --release`), so build them first:
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p e2e --bin cold_start [-- --runs 30] [--bin-dir DIR] [--env K=V]... [NAME...]
//! ```
//!
//! `--env` adds to (or overrides) the environment every binary starts with.
//!
//! `--deployed` runs every binary with the deployed configuration instead of the local
//! one: `TABLE_NAME`, `EVENT_BUS_NAME`, `DEAD_LETTER_QUEUE_URL`,
//! `WATCHSTATE_ADMIN_KEY_PARAMETER` (no admin key in the environment), credentials,
//! and `AWS_ENDPOINT_URL` on a moto server this benchmark starts, with the table, bus,
//! queue and parameter created there. The endpoint is a counting proxy in front of
//! moto: every connection a binary opens during init is reported (docs/PERFORMANCE.md allows
//! none). `--lambda-dir DIR` takes the binaries `cargo lambda build` wrote
//! (`DIR/NAME/bootstrap`), i.e. the Lambda features:
//!
//! ```text
//! for f in hello-lambda webhook api push import export; do cargo lambda build --release -p $f; done
//! cargo run -p e2e --bin cold_start -- --deployed --lambda-dir target/lambda
//! ```
//! (`make bench-lambda` does both; this program itself need not be a release build:
//! it only serves the stand-in Runtime API and times the others.)
//!
//! (`make bench` does both.) A tiny stand-in for the Runtime API on 127.0.0.1 records
//! the instant the first `GET /2018-06-01/runtime/invocation/next` arrives and holds
//! that request; the process is then killed. Runs are interleaved across binaries, after
//! two warm-up runs each, every run with a clean environment. Each binary keeps one
//! data dir (WATCHSTATE_DATA_DIR) across its runs: the warm-up creates the embedded
//! store, so the measured runs open it rather than time SQLite's schema creation and
//! its fsyncs, which are no part of a Lambda cold start (DynamoDB there) and swing
//! with the machine's disk load.
//!
//! `--instructions N` also runs each binary N times under `valgrind --tool=callgrind`
//! to its first poll (then SIGTERM, on which callgrind writes its counts) and reports
//! the median number of instructions executed, and its ratio to hello-world's: unlike
//! wall-clock time it does not move with the load of a shared machine.
//!
//! Speed is reported, never asserted: the exit status is non-zero only when something
//! could not be measured (a missing binary, an init error, a crash, no poll in 10 s).
//! A binary that exits successfully without polling (a placeholder `main`) is listed as
//! such.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

const BASELINE: &str = "hello-lambda";
const DEFAULT_BINARIES: [&str; 6] = [BASELINE, "webhook", "api", "push", "import", "export"];
const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
const WARMUP_RUNS: usize = 2;
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// Under callgrind a binary runs some 50 times slower.
const CALLGRIND_POLL_TIMEOUT: Duration = Duration::from_secs(120);
/// The budgets of docs/PERFORMANCE.md, printed for the reader (not enforced).
const INIT_RATIO_BUDGET: f64 = 2.0;
const SIZE_BUDGET_MB: f64 = 8.0;

const USAGE: &str = "usage: cold_start [--runs N] [--instructions N] [--bin-dir DIR | --lambda-dir DIR] [--deployed] [--env KEY=VALUE]... [BINARY...]
  Measures exec -> first Runtime API poll of release binaries already built with
  `cargo build --release --workspace --bins` (or `cargo lambda build --release`,
  with --lambda-dir target/lambda). BINARY defaults to:
  hello-lambda webhook api push import export (hello-lambda is the baseline).
  --deployed: the deployed configuration, AWS endpoints on a moto server it starts.
  --env adds to the environment of every binary (repeatable).
  --instructions N: also count instructions to the first poll, N callgrind runs each.";

/// What the stand-in Runtime API saw.
enum Seen {
    Poll(Instant),
    InitError(String),
}

/// The result of one run.
enum Run {
    Polled(Duration),
    /// Exited with success before polling: a placeholder `main`.
    ExitedCleanly,
}

struct Bench {
    name: String,
    path: PathBuf,
    samples: Vec<Duration>,
    /// Instructions executed to the first poll, one per callgrind run.
    instructions: Vec<u64>,
    /// Connections to the AWS endpoint during init, over all runs (`--deployed`).
    aws_calls: usize,
    /// Set once the binary cannot be measured; it is not run again.
    outcome: Option<Outcome>,
}

enum Outcome {
    NoPoll,
    Failed(String),
}

struct Args {
    runs: usize,
    /// Callgrind runs per binary (0: none).
    instruction_runs: usize,
    bin_dir: PathBuf,
    /// Binaries at `bin_dir/NAME/bootstrap` (cargo lambda build) rather than `bin_dir/NAME`.
    lambda_layout: bool,
    deployed: bool,
    binaries: Vec<String>,
    env: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("cold_start: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("cold_start: {message}");
            ExitCode::from(2)
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut runs = 30;
    let mut instruction_runs = 0;
    let mut bin_dir = None;
    let mut lambda_layout = false;
    let mut deployed = false;
    let mut binaries = Vec::new();
    let mut env = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" | "-n" => {
                let value = it.next().ok_or("--runs needs a value")?;
                runs = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs: not a positive number: {value}"))?;
            }
            "--instructions" => {
                let value = it.next().ok_or("--instructions needs a value")?;
                instruction_runs = value
                    .parse()
                    .map_err(|_| format!("--instructions: not a number: {value}"))?;
            }
            "--bin-dir" => {
                bin_dir = Some(PathBuf::from(it.next().ok_or("--bin-dir needs a value")?))
            }
            "--lambda-dir" => {
                bin_dir = Some(PathBuf::from(
                    it.next().ok_or("--lambda-dir needs a value")?,
                ));
                lambda_layout = true;
            }
            "--deployed" => deployed = true,
            "--env" => {
                let pair = it.next().ok_or("--env needs KEY=VALUE")?;
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("--env: not KEY=VALUE: {pair}"))?;
                env.push((key.to_string(), value.to_string()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            name => binaries.push(name.to_string()),
        }
    }
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        // target/release/cold_start: the functions were built next to it, same profile.
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate this executable: {e}"))?
            .parent()
            .ok_or("this executable has no parent directory")?
            .to_path_buf(),
    };
    if binaries.is_empty() {
        binaries = DEFAULT_BINARIES.iter().map(|s| s.to_string()).collect();
    }
    if !binaries.iter().any(|b| b == BASELINE) {
        binaries.insert(0, BASELINE.to_string());
    }
    Ok(Args {
        runs,
        instruction_runs,
        bin_dir,
        lambda_layout,
        deployed,
        binaries,
        env,
    })
}

/// Ok(true) when every binary was measured (or is a placeholder), Ok(false) when some
/// failed, Err when nothing could be measured.
fn run(mut args: Args) -> Result<bool, String> {
    if !args.lambda_layout && args.bin_dir.file_name().and_then(|n| n.to_str()) != Some("release") {
        eprintln!(
            "cold_start: warning: {} is not a release directory; the budget is about release builds",
            args.bin_dir.display()
        );
    }
    let mut benches = Vec::new();
    let mut missing = Vec::new();
    for name in &args.binaries {
        // Absolute: each binary runs in its own working directory.
        let file = if args.lambda_layout {
            args.bin_dir.join(name).join("bootstrap")
        } else {
            args.bin_dir.join(name)
        };
        match fs::canonicalize(file) {
            Ok(path) if path.is_file() => benches.push(Bench {
                name: name.clone(),
                path,
                samples: Vec::with_capacity(args.runs),
                instructions: Vec::new(),
                aws_calls: 0,
                outcome: None,
            }),
            _ => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "not built in {}: {} (run `cargo build --release --workspace --bins` first)",
            args.bin_dir.display(),
            missing.join(", ")
        ));
    }

    // Kept alive until the end: moto and the proxy counting connections to it.
    let aws = if args.deployed {
        let aws = deployed::Aws::start()?;
        let mut env = aws.env();
        env.append(&mut args.env);
        args.env = env;
        Some(aws)
    } else {
        None
    };

    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let api = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?
        .to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || serve(listener, tx));
    let scratch = tempfile::Builder::new()
        .prefix("cold-start-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;

    println!(
        "cold start: exec -> first GET {NEXT}, {} runs each after {WARMUP_RUNS} warm-up, binaries in {}",
        args.runs,
        args.bin_dir.display()
    );
    for (key, value) in &args.env {
        println!("  with {key}={value}");
    }
    for round in 0..WARMUP_RUNS + args.runs {
        for bench in benches.iter_mut().filter(|b| b.outcome.is_none()) {
            let data_dir = scratch.path().join(&bench.name);
            let calls_before = aws.as_ref().map(|a| a.connections());
            let measured = measure(
                &bench.name,
                &bench.path,
                &api,
                &data_dir,
                &args.env,
                !args.deployed,
                None,
                &rx,
            );
            if let (Some(aws), Some(before)) = (&aws, calls_before) {
                bench.aws_calls += aws.connections() - before;
            }
            match measured {
                Ok(Run::Polled(took)) if round >= WARMUP_RUNS => bench.samples.push(took),
                Ok(Run::Polled(_)) => {}
                Ok(Run::ExitedCleanly) => bench.outcome = Some(Outcome::NoPoll),
                Err(message) => bench.outcome = Some(Outcome::Failed(message)),
            }
        }
    }

    for _ in 0..args.instruction_runs {
        for bench in benches.iter_mut().filter(|b| b.outcome.is_none()) {
            let data_dir = scratch.path().join(&bench.name);
            let out = data_dir.join("callgrind.out");
            let _ = fs::remove_file(&out);
            let measured = measure(
                &bench.name,
                &bench.path,
                &api,
                &data_dir,
                &args.env,
                !args.deployed,
                Some(&out),
                &rx,
            )
            .and_then(|_| callgrind_total(&out));
            match measured {
                Ok(n) => bench.instructions.push(n),
                Err(message) => bench.outcome = Some(Outcome::Failed(message)),
            }
        }
    }

    report(&benches, aws.is_some());
    Ok(benches
        .iter()
        .all(|b| !matches!(b.outcome, Some(Outcome::Failed(_)))))
}

/// Runs one binary until its first poll; kills it. With `callgrind` (the file to write
/// the counts to) it runs under `valgrind --tool=callgrind` and is stopped by SIGTERM,
/// on which callgrind writes the file.
#[allow(clippy::too_many_arguments)]
fn measure(
    name: &str,
    path: &Path,
    api: &str,
    data_dir: &Path,
    env: &[(String, String)],
    local: bool,
    callgrind: Option<&Path>,
    rx: &Receiver<Seen>,
) -> Result<Run, String> {
    fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let log_path = data_dir.join("output.log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    while rx.try_recv().is_ok() {}

    let mut command = match callgrind {
        Some(out) => {
            let mut c = Command::new("valgrind");
            c.arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(path);
            // The environment is cleared as for every run; valgrind keeps PATH.
            c.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
            c
        }
        None => {
            let mut c = Command::new(path);
            c.env_clear();
            c
        }
    };
    let stop = |child: &mut Child| match callgrind {
        Some(_) => terminate(child),
        None => stop(child),
    };
    let poll_timeout = if callgrind.is_some() {
        CALLGRIND_POLL_TIMEOUT
    } else {
        POLL_TIMEOUT
    };
    command
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/01/01/[1]cold-start")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("RUST_LOG", "info");
    if local {
        command
            .env("WATCHSTATE_DATA_DIR", data_dir)
            .env("WATCHSTATE_ADMIN_KEY", "x");
    }
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);

    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| match callgrind {
        Some(_) => format!("cannot start valgrind (apt-get install valgrind): {e}"),
        None => format!("cannot start {}: {e}", path.display()),
    })?;
    loop {
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok(Seen::Poll(at)) => {
                stop(&mut child);
                return Ok(Run::Polled(at.saturating_duration_since(started)));
            }
            Ok(Seen::InitError(body)) => {
                stop(&mut child);
                return Err(format!("reported an init error: {body}"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                stop(&mut child);
                return Err("the stand-in Runtime API stopped".into());
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for {name}: {e}"))?
        {
            // Its poll may have arrived just before it went away.
            if let Ok(Seen::Poll(at)) = rx.recv_timeout(Duration::from_millis(20)) {
                return Ok(Run::Polled(at.saturating_duration_since(started)));
            }
            if status.success() {
                return Ok(Run::ExitedCleanly);
            }
            return Err(format!(
                "exited ({status}) before polling; output:\n{}",
                tail(&log_path)
            ));
        }
        if started.elapsed() > poll_timeout {
            stop(&mut child);
            return Err(format!(
                "no poll within {} s; output:\n{}",
                poll_timeout.as_secs(),
                tail(&log_path)
            ));
        }
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM (callgrind writes its counts on a fatal signal, not on SIGKILL), then wait.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// The instruction count (`Ir`) of a callgrind output file: its `summary:` (or
/// `totals:`) line.
fn callgrind_total(path: &Path) -> Result<u64, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("no callgrind output {}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no summary line in {}", path.display()))
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The stand-in Runtime API: one thread per connection.
fn serve(listener: TcpListener, tx: Sender<Seen>) {
    for stream in listener.incoming().flatten() {
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = connection(stream, &tx);
        });
    }
}

/// HTTP/1.1 requests on one connection. `next` is recorded and held until the client
/// goes away; an init error is recorded and acknowledged; anything else gets a 404.
fn connection(stream: TcpStream, tx: &Sender<Seen>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let at = Instant::now();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        let path = target.split('?').next().unwrap_or_default();
        match (method.as_str(), path) {
            ("GET", NEXT) => {
                let _ = tx.send(Seen::Poll(at));
                // Hold the request: drain until the process is killed.
                let mut sink = [0u8; 512];
                while reader.read(&mut sink)? > 0 {}
                return Ok(());
            }
            ("POST", INIT_ERROR) => {
                let _ = tx.send(Seen::InitError(String::from_utf8_lossy(&body).into_owned()));
                writer.write_all(
                    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                )?;
            }
            _ => {
                writer.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")?;
            }
        }
    }
}

fn report(benches: &[Bench], deployed: bool) {
    let baseline = benches
        .iter()
        .find(|b| b.name == BASELINE)
        .and_then(|b| percentile(&b.samples, 0.5));
    println!();
    println!(
        "{:<14} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "binary", "runs", "median ms", "p90 ms", "ratio", "size MB", "stripped"
    );
    let mut notes = Vec::new();
    let instruction_baseline = benches
        .iter()
        .find(|b| b.name == BASELINE)
        .and_then(|b| median_count(&b.instructions));
    for bench in benches {
        let size = fs::metadata(&bench.path).map(|m| m.len() as f64 / 1e6).ok();
        let stripped = match has_symbol_table(&bench.path) {
            Some(false) => "yes",
            Some(true) => "NO",
            None => "?",
        };
        let size_text = size.map_or("?".into(), |s| format!("{s:.2}"));
        let median = percentile(&bench.samples, 0.5);
        let p90 = percentile(&bench.samples, 0.9);
        match (&bench.outcome, median, p90) {
            (None, Some(median), Some(p90)) => {
                let ratio = baseline.map(|b| median.as_secs_f64() / b.as_secs_f64());
                println!(
                    "{:<14} {:>5} {:>10.2} {:>10.2} {:>10} {:>10} {:>9}",
                    bench.name,
                    bench.samples.len(),
                    ms(median),
                    ms(p90),
                    ratio.map_or("?".into(), |r| format!("{r:.2}x")),
                    size_text,
                    stripped
                );
                if bench.name != BASELINE {
                    if let (Some(ratio), Some(size)) = (ratio, size) {
                        notes.push(format!(
                            "{}: init {ratio:.2}x hello-world (budget {INIT_RATIO_BUDGET}x: {}), size {size:.2} MB (budget < {SIZE_BUDGET_MB} MB: {})",
                            bench.name,
                            if ratio <= INIT_RATIO_BUDGET { "within" } else { "OVER" },
                            if size < SIZE_BUDGET_MB { "within" } else { "OVER" },
                        ));
                    }
                }
            }
            (outcome, _, _) => {
                let what = match outcome {
                    Some(Outcome::NoPoll) => "exited 0 without polling (placeholder?)",
                    _ => "FAILED",
                };
                println!(
                    "{:<14} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9}  {what}",
                    bench.name,
                    bench.samples.len(),
                    "-",
                    "-",
                    "-",
                    size_text,
                    stripped
                );
                if let Some(Outcome::Failed(message)) = outcome {
                    notes.push(format!("{} failed: {message}", bench.name));
                }
            }
        }
    }
    if benches.iter().any(|b| !b.instructions.is_empty()) {
        println!();
        println!(
            "{:<14} {:>5} {:>16} {:>10}",
            "binary", "runs", "instructions", "ratio"
        );
        for bench in benches {
            if let Some(n) = median_count(&bench.instructions) {
                let ratio = instruction_baseline.map(|b| n as f64 / b as f64);
                println!(
                    "{:<14} {:>5} {:>16} {:>10}",
                    bench.name,
                    bench.instructions.len(),
                    n,
                    ratio.map_or("?".into(), |r| format!("{r:.2}x"))
                );
                if let (Some(ratio), true) = (ratio, bench.name != BASELINE) {
                    notes.push(format!(
                        "{}: {ratio:.2}x hello-world's instructions to the first poll (budget {INIT_RATIO_BUDGET}x: {})",
                        bench.name,
                        if ratio <= INIT_RATIO_BUDGET { "within" } else { "OVER" },
                    ));
                }
            }
        }
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    if deployed {
        for bench in benches {
            println!(
                "{}: {} connection(s) to the AWS endpoint during init over all runs{}",
                bench.name,
                bench.aws_calls,
                if bench.aws_calls == 0 {
                    ""
                } else {
                    " (budget: none)"
                }
            );
        }
    }
}

/// The median of instruction counts (the lower one of an even count).
fn median_count(counts: &[u64]) -> Option<u64> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Whether a 64-bit little-endian ELF file still has a symbol table (`SHT_SYMTAB`):
/// `strip` removes it. None when the file is not such an ELF file.
fn has_symbol_table(path: &Path) -> Option<bool> {
    const SHT_SYMTAB: u32 = 2;
    let data = fs::read(path).ok()?;
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?));
    let section_headers = usize::try_from(u64_at(0x28)?).ok()?;
    let entry_size = usize::from(u16_at(0x3A)?);
    let count = usize::from(u16_at(0x3C)?);
    for i in 0..count {
        if u32_at(section_headers + i * entry_size + 4)? == SHT_SYMTAB {
            return Some(true);
        }
    }
    Some(false)
}

/// The deployed configuration's AWS side: moto with the resources the template
/// creates, behind a proxy that counts connections (none are expected during init).
mod deployed {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;

    use e2e::moto::Moto;

    const TABLE: &str = "watchstate-cold-start";
    const BUS: &str = "watchstate-cold-start-bus";
    const PARAMETER: &str = "/watchstate/cold-start/admin-key";

    pub struct Aws {
        _moto: Moto,
        proxy: String,
        queue_url: String,
        connections: Arc<AtomicUsize>,
    }

    impl Aws {
        pub fn start() -> Result<Aws, String> {
            let moto = Moto::start();
            let queue_url = create_resources(&moto.endpoint())?;
            let listener = TcpListener::bind("127.0.0.1:0")
                .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
            let proxy = format!(
                "http://{}",
                listener.local_addr().map_err(|e| e.to_string())?
            );
            let connections = Arc::new(AtomicUsize::new(0));
            let (count, port) = (connections.clone(), moto.port);
            thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) {
                        forward(client, upstream);
                    }
                }
            });
            Ok(Aws {
                _moto: moto,
                proxy,
                queue_url,
                connections,
            })
        }

        pub fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }

        /// What the template sets on the functions, plus Lambda's credentials.
        pub fn env(&self) -> Vec<(String, String)> {
            [
                ("TABLE_NAME", TABLE),
                ("EVENT_BUS_NAME", BUS),
                ("DEAD_LETTER_QUEUE_URL", self.queue_url.as_str()),
                ("WATCHSTATE_ADMIN_KEY_PARAMETER", PARAMETER),
                ("WATCHSTATE_PUBLIC_URL", ""),
                ("AWS_ENDPOINT_URL", self.proxy.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_SESSION_TOKEN", "testing"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        }
    }

    fn forward(client: TcpStream, upstream: TcpStream) {
        let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        let pipe = |mut from: TcpStream, mut to: TcpStream| {
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
            });
        };
        pipe(client, upstream2);
        pipe(upstream, client2);
    }

    /// The table, bus, dead-letter queue and admin-key parameter; the queue's URL.
    fn create_resources(endpoint: &str) -> Result<String, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let conf = e2e::moto::sdk_config(endpoint);
            let dynamo = aws_sdk_dynamodb::Client::new(&conf);
            watchstate::adapters::store::dynamo::create_table(&dynamo, TABLE)
                .await
                .map_err(|e| format!("create table: {e}"))?;
            aws_sdk_eventbridge::Client::new(&conf)
                .create_event_bus()
                .name(BUS)
                .send()
                .await
                .map_err(|e| format!("create bus: {e}"))?;
            aws_sdk_ssm::Client::new(&conf)
                .put_parameter()
                .name(PARAMETER)
                .value("cold-start-admin-key")
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .map_err(|e| format!("put parameter: {e}"))?;
            let queue = aws_sdk_sqs::Client::new(&conf)
                .create_queue()
                .queue_name("watchstate-cold-start-dlq")
                .send()
                .await
                .map_err(|e| format!("create queue: {e}"))?;
            queue
                .queue_url()
                .map(str::to_string)
                .ok_or_else(|| "moto returned no queue URL".to_string())
        })
    }
}
