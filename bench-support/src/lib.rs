//! What mnode's benchmarks share: the work folder, running commands, reference servers (nginx)
//! and tools installed on demand (apt-get), big deterministic files, and timing helpers.
//!
//! Benchmarks panic on any failure: a figure measured on a broken setup is worse than none.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod netns;

use std::{
    io::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Stops a child process as a person would (SIGTERM) and waits for it to end.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Whether each of `tools` is on the `PATH`; when one is not, outside CI (`CI` unset) says the
/// test is skipped and returns false, and in CI fails.
pub fn have_tools(tools: &[&str]) -> bool {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing; .ci/run installs it"
            );
            eprintln!("SKIPPED: {tool} is not installed");
            return false;
        }
    }
    true
}

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `$MNODE_BENCH_DIR`, or `mnode-bench` in the system temp dir; created.
pub fn bench_dir() -> PathBuf {
    let dir = std::env::var_os("MNODE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mnode-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` to success; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small seeded generator (splitmix64): sizes, topologies, the same for the same seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// "met" or "NOT met", for the verdict lines.
pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The fastest of `n` runs.
pub fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap()
}

/// Flushes dirty pages so that one run's writeback does not land in the next run.
pub fn sync_disk() {
    let _ = Command::new("sync").status();
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 10 s) until something listens on `port`.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `name` from the first of `paths` that exists, else installed with apt-get from the first
/// of `packages` that installs.
pub fn tool(paths: &[&str], packages: &[&str]) -> PathBuf {
    let find = || paths.iter().map(PathBuf::from).find(|p| p.exists());
    if let Some(p) = find() {
        return p;
    }
    let install = |pkg: &str| {
        eprintln!("installing {pkg} with apt-get");
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", pkg])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !packages.iter().any(|p| install(p)) {
        let _ = Command::new("apt-get").arg("update").status();
        let _ = packages.iter().any(|p| install(p));
    }
    find().unwrap_or_else(|| {
        panic!("none of {paths:?} exists and apt-get could not install {packages:?}")
    })
}

/// The nginx binary, installed with apt-get if missing.
pub fn nginx_bin() -> PathBuf {
    tool(
        &["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"],
        &["nginx-light", "nginx"],
    )
}

/// The wrk binary, installed with apt-get if missing.
pub fn wrk_bin() -> PathBuf {
    tool(&["/usr/bin/wrk", "/usr/local/bin/wrk"], &["wrk"])
}

/// A file of `size` bytes (a whole number of MiB), incompressible and deterministic, named
/// `{prefix}-{n}mib.bin` in `dir`, made once and read into the page cache.
pub fn big_file(dir: &Path, prefix: &str, size: u64) -> PathBuf {
    let file = dir.join(format!("{prefix}-{}mib.bin", size >> 20));
    if std::fs::metadata(&file).ok().map(|m| m.len()) != Some(size) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut out = blake3::Hasher::new()
            .update(prefix.as_bytes())
            .finalize_xof();
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..size >> 20 {
            out.fill(&mut buf);
            f.write_all(&buf).unwrap();
        }
        f.flush().unwrap();
    }
    run(Command::new("cat").arg(&file).stdout(Stdio::null()));
    file
}

/// An nginx of its own on 127.0.0.1 serving the files in `root` (sendfile on, no access
/// log, one worker), stopped on drop.
pub struct Nginx {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Nginx {
    /// Starts it, with its config and logs under `dir/nginx`.
    pub fn start(dir: &Path, root: &Path) -> Self {
        let bin = nginx_bin();
        let ngx = dir.join("nginx");
        let _ = std::fs::remove_dir_all(&ngx);
        std::fs::create_dir_all(ngx.join("tmp")).unwrap();
        let port = free_port();
        let d = ngx.display();
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log off;\n\
               default_type application/octet-stream;\n\
               sendfile on;\n\
               tcp_nopush on;\n\
               keepalive_requests 1000000;\n\
               client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {}; }}\n\
             }}\n",
            root.display()
        );
        let conf_path = ngx.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&ngx)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port);
        Self { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `wrk` run: requests per second and latency percentiles.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Non-2xx/3xx answers and socket errors.
    pub errors: u64,
}

/// Runs `wrk --latency` against `url` with `threads` threads, `conns` connections, for `secs`
/// seconds.
pub fn wrk(url: &str, threads: u32, conns: u32, secs: u32) -> WrkResult {
    let out = run(Command::new(wrk_bin()).args([
        "--latency",
        &format!("-t{threads}"),
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        url,
    ]));
    parse_wrk(&out).unwrap_or_else(|| panic!("cannot read wrk's output:\n{out}"))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Reads `wrk --latency` output (for runs started with a script of their own).
pub fn parse_wrk(out: &str) -> Option<WrkResult> {
    let field = |prefix: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
    };
    let rps = field("Requests/sec:")?.parse().ok()?;
    let p50 = parse_duration(&field("50%")?)?;
    let p99 = parse_duration(&field("99%")?)?;
    let errors = out
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
                return rest.trim().parse::<u64>().ok();
            }
            let rest = l.strip_prefix("Socket errors:")?;
            Some(
                rest.split(',')
                    .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum(),
            )
        })
        .sum();
    Some(WrkResult {
        rps,
        p50,
        p99,
        errors,
    })
}

/// The credentials [`S3Server`] accepts.
pub const S3_ACCESS_KEY: &str = "mnode-test-access";
/// The secret of [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "mnode-test-secret-0123456789";

/// A real S3-compatible server on 127.0.0.1: s3s-fs's implementation (from crates.io) over
/// the folder `root`, each sub-folder a bucket, run in this process on a runtime of its own,
/// over TCP. Its sockets set `TCP_NODELAY`, as S3 servers do (the `s3s-fs` binary does not,
/// which adds a 40 ms delayed-ACK stall to every GET on loopback). It can be stopped (every
/// connection cut, as a crash would) and started again on the same port and folder, to test
/// what a node does while its bucket is away. Stopped on drop.
pub struct S3Server {
    runtime: Option<tokio::runtime::Runtime>,
    root: PathBuf,
    /// Its port.
    pub port: u16,
}

impl S3Server {
    /// Starts a server over `root` with the bucket `bucket`, accepting [`S3_ACCESS_KEY`].
    pub fn start(root: &Path, bucket: &str) -> Self {
        std::fs::create_dir_all(root.join(bucket)).unwrap();
        let mut server = Self {
            runtime: None,
            root: root.to_owned(),
            port: free_port(),
        };
        server.resume();
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once: open connections are cut, new ones refused.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts it again after [`S3Server::stop`], on the same port and folder.
    pub fn resume(&mut self) {
        assert!(self.runtime.is_none(), "the S3 server is running");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-server")
            .enable_all()
            .build()
            .unwrap();
        let fs = s3s_fs::FileSystem::new(&self.root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
        ));
        let service = builder.build();
        // A std listener (SO_REUSEADDR, so the port can be taken again after a stop), made
        // a tokio one on the server's runtime: this may be called from inside another one.
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        self.runtime = Some(runtime);
        wait_port(self.port);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:8080/x\n  2 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   310.12us  120.00us   5.00ms   90.00%\n  Latency Distribution\n     50%  289.00us\n     75%  350.00us\n     90%  420.00us\n     99%    1.20ms\n  1000 requests in 10.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  95000.50\nTransfer/sec:     10.00MB\n";
        let r = parse_wrk(out).unwrap();
        assert!((r.rps - 95000.5).abs() < 1e-6);
        assert_eq!(r.p50, Duration::from_micros(289));
        assert_eq!(r.p99, Duration::from_micros(1200));
        assert_eq!(r.errors, 7);
        assert!(parse_wrk("garbage").is_none());
    }
}
