//! The load tool: seeds a database of many members with many basket lines, starts the real
//! `obole` binary on it, and measures with wrk (and its own client for signed notifications):
//! the logged-in basket page, confirmations per second with exactly-once checked after,
//! the basket during a storm of logins, peak memory, and the journal exports.
//! Run through `bench/run.sh`, which builds the release binaries and installs wrk.

#[allow(dead_code)]
#[path = "../obole-faults/actors.rs"]
mod actors;
mod seed;
#[allow(dead_code)]
#[path = "../obole-faults/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

use actors::Member;
use server::{Database, Server};

#[derive(Parser)]
#[command(about = "obole's load figures: basket page, confirmations, login storm, memory, exports")]
struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    database: String,
    #[arg(
        long,
        env = "OBOLE_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    #[arg(long, default_value_t = 20)]
    lines: usize,
    /// Journal lines in the exported year.
    #[arg(long, default_value_t = 1_000_000)]
    journal_lines: usize,
    /// Attempts confirmed by signed notifications.
    #[arg(long, default_value_t = 20_000)]
    confirmations: usize,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Logins in flight at once during the storm.
    #[arg(long, default_value_t = 8)]
    login_connections: usize,
    /// The obole binary (default: next to this one).
    #[arg(long)]
    obole: Option<PathBuf>,
    /// Folder of the wrk scripts.
    #[arg(long, default_value = "bench")]
    scripts: PathBuf,
    /// Extra OBOLE_* settings for the server, as KEY=VALUE.
    #[arg(long = "set")]
    set: Vec<String>,
    /// Keep the work folder (the server's log) and print where it is.
    #[arg(long)]
    keep: bool,
    /// What to measure: any of basket, storm, confirm, exports.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "basket,storm,confirm,exports"
    )]
    phases: Vec<String>,
}

impl Args {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// What wrk measured.
#[derive(Debug, Default)]
struct Wrk {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn parse_latency(value: &str) -> Option<f64> {
    let (number, unit) = value
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| value.split_at(i))?;
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(output: &str) -> Wrk {
    let mut wrk = Wrk::default();
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => wrk.requests_per_sec = v.parse().unwrap_or(0.0),
            (Some("50%"), Some(v)) => wrk.p50_ms = parse_latency(v).unwrap_or(f64::NAN),
            (Some("99%"), Some(v)) => wrk.p99_ms = parse_latency(v).unwrap_or(f64::NAN),
            (Some("Non-2xx"), _) => {
                wrk.errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            (Some("Socket"), _) => {
                wrk.errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    wrk
}

fn wrk(
    script: &Path,
    url: &str,
    threads: usize,
    connections: usize,
    seconds: u64,
    env: &[(&str, String)],
) -> anyhow::Result<std::process::Child> {
    Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("could not run wrk (apt-get install wrk)")
}

fn finish(child: std::process::Child) -> anyhow::Result<Wrk> {
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {text}");
    }
    Ok(parse_wrk(&text))
}

/// Peak resident memory of a process so far, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match &args.obole {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .join("obole"),
    };
    let database = Database::create(&args.database, &args.postgres_url).await?;
    let workdir =
        std::env::temp_dir().join(format!("obole_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir)?;
    let outcome = run(&args, &binary, &database, &workdir).await;
    database.drop_all().await;
    if args.keep {
        println!("work folder kept: {}", workdir.display());
    } else {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    outcome
}

async fn run(
    args: &Args,
    binary: &Path,
    database: &Database,
    workdir: &Path,
) -> anyhow::Result<()> {
    let url = database.url();
    let settings = obole::config::Settings::default();
    let pool = obole::db::connect(&url, 4).await?;
    obole::db::migrate(&pool).await?;
    obole::demo::seed(&pool, &settings.accounts).await?;
    let seeding = Instant::now();
    let (members, charge_lines) =
        seed::members(&pool, &settings.accounts, args.members, args.lines).await?;
    seed::journal(&pool, &members, charge_lines, args.journal_lines).await?;
    let attempts = seed::pending_attempts(&pool, &members, args.confirmations).await?;
    let journal_lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal_lines")
        .fetch_one(&pool)
        .await?;
    println!(
        "seeded {} members × {} basket lines, {journal_lines} journal lines, {} attempts in {:.1} s ({})",
        args.members,
        args.lines,
        attempts.len(),
        seeding.elapsed().as_secs_f64(),
        args.database
    );

    let port = server::free_port()?;
    let mut env: Vec<(String, String)> = vec![
        ("OBOLE_CONFIG".into(), "/nonexistent/obole.toml".into()),
        ("OBOLE_DATABASE_URL".into(), url.clone()),
        ("OBOLE_PORT".into(), port.to_string()),
        ("OBOLE_RECONCILE__INTERVAL_SECS".into(), "0".into()),
        (
            "OBOLE_MAIL__DIR".into(),
            workdir.join("mail").display().to_string(),
        ),
        ("OBOLE_LOG".into(), "warn".into()),
    ];
    for setting in &args.set {
        let (key, value) = setting.split_once('=').context("--set KEY=VALUE")?;
        env.push((key.into(), value.into()));
    }
    let mut server = Server::new(binary, env, port, workdir.join("obole.log"));
    server.start().await?;
    let base = server.address.clone();

    // Sessions of as many members as connections.
    let mut cookies = Vec::new();
    for m in 0..args.connections.min(members.len()) {
        let member =
            Member::log_in(&base, &format!("bench{m}@exemple.org"), seed::PASSWORD).await?;
        cookies.push(member.cookie().to_string());
    }
    let cookie_file = workdir.join("cookies.txt");
    std::fs::write(&cookie_file, cookies.join("\n"))?;
    let basket_env = [("OBOLE_BENCH_COOKIES", cookie_file.display().to_string())];
    let basket_script = args.scripts.join("basket.lua");

    // Warm-up, then the basket page alone.
    let mut figures = Vec::new();
    if args.runs("basket") {
        finish(wrk(
            &basket_script,
            &base,
            2,
            args.connections,
            3,
            &basket_env,
        )?)?;
        let basket = finish(wrk(
            &basket_script,
            &base,
            2,
            args.connections,
            args.seconds,
            &basket_env,
        )?)?;
        figures.push(format!(
            "| basket page, {} connections | {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; peak RSS {:.1} MiB; {} |",
            args.connections,
            basket.requests_per_sec,
            basket.p50_ms,
            basket.p99_ms,
            basket.errors,
            peak_rss_mib(server.pid().unwrap_or(0)),
            load_average()
        ));
    }

    // The basket page during a storm of logins.
    if args.runs("storm") {
        let (login_cookie, token) = Member::anonymous(&base).await?;
        let login_env = [
            ("OBOLE_BENCH_LOGIN_COOKIE", login_cookie),
            (
                "OBOLE_BENCH_LOGIN_BODY",
                serde_urlencoded::to_string([
                    ("email", "bench1@exemple.org"),
                    ("password", seed::PASSWORD),
                    ("csrf_token", token.as_str()),
                ])?,
            ),
        ];
        let storm = wrk(
            &args.scripts.join("login.lua"),
            &format!("{base}/login"),
            1,
            args.login_connections,
            args.seconds,
            &login_env,
        )?;
        let during = finish(wrk(
            &basket_script,
            &base,
            2,
            args.connections,
            args.seconds,
            &basket_env,
        )?)?;
        let logins = finish(storm)?;
        figures.push(format!(
            "| basket page during {} concurrent logins | {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; logins {:.1}/s, p99 {:.0} ms; peak RSS {:.1} MiB; {} |",
            args.login_connections,
            during.requests_per_sec,
            during.p50_ms,
            during.p99_ms,
            during.errors,
            logins.requests_per_sec,
            logins.p99_ms,
            peak_rss_mib(server.pid().unwrap_or(0)),
            load_average()
        ));
    }

    // Confirmations: signed notifications of distinct attempts, 64 in flight.
    let mut once = true;
    if args.runs("confirm") {
        let (confirm_secs, confirm_errors) = confirm(&base, &attempts, args.connections).await?;
        let rss_confirm = peak_rss_mib(server.pid().unwrap_or(0));
        let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
            .fetch_one(&pool)
            .await?;
        let receipts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM journal_entries WHERE posting_key LIKE 'capture:%'",
        )
        .fetch_one(&pool)
        .await?;
        let lines: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM basket_lines WHERE kind = 'payment'")
                .fetch_one(&pool)
                .await?;
        let notifications: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM gateway_notifications WHERE verdict = 'posted'",
        )
        .fetch_one(&pool)
        .await?;
        let expected = attempts.len() as i64;
        once = paid == expected
            && receipts == expected
            && lines == expected
            && notifications == expected;
        figures.push(format!(
            "| confirmations (signed notifications → posted) | {} in {:.2} s = {:.0}/s, {} errors; exactly once: {} ({paid} paid, {receipts} receipts, {lines} basket lines, {notifications} notifications posted); peak RSS {rss_confirm:.1} MiB; {} |",
            attempts.len(),
            confirm_secs,
            attempts.len() as f64 / confirm_secs,
            confirm_errors,
            if once { "yes" } else { "NO" },
            load_average()
        ));
    }

    // The exports, each on a freshly started server so that its peak memory is the export's.
    if args.runs("exports") {
        for format in ["fec", "csv"] {
            server.kill()?;
            server.start().await?;
            let pid = server.pid().unwrap_or(0);
            let idle = peak_rss_mib(pid);
            let manager = Member::log_in(&base, "tresorier@exemple.org", "tresorier-demo").await?;
            let year = &obole::db::now_text()[..4];
            let started = Instant::now();
            let (bytes, rows) = download(
                &format!("{base}/admin/ledger/export?format={format}&year={year}"),
                manager.cookie(),
            )
            .await?;
            figures.push(format!(
                "| {} export of {journal_lines} journal lines | {rows} rows, {:.1} MiB in {:.2} s; peak RSS {idle:.1} MiB before, {:.1} MiB after; {} |",
                format.to_uppercase(),
                bytes as f64 / 1048576.0,
                started.elapsed().as_secs_f64(),
                peak_rss_mib(pid),
                load_average()
            ));
        }
    }
    server.kill()?;
    pool.close().await;

    println!("\n| figure ({}) | value |", args.database);
    println!("|---|---|");
    for figure in &figures {
        println!("{figure}");
    }
    if !once {
        bail!("confirmations were not posted exactly once");
    }
    Ok(())
}

/// The machine's load average (1, 5, 15 minutes) as `/proc/loadavg` gives it: the figures
/// mean little without it on a shared machine.
fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!("load {}", parts.join(" "))
}

/// Sends one signed notification per attempt, `concurrency` at a time; returns the seconds
/// it took and how many were not answered 2xx.
async fn confirm(
    base: &str,
    attempts: &[(String, String, i64)],
    concurrency: usize,
) -> anyhow::Result<(f64, u64)> {
    let notifications: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        attempts
            .iter()
            .map(|(id, gateway_ref, cents)| {
                actors::notification(
                    "succeeded",
                    &json!({
                        "id": gateway_ref, "object": "payment", "status": "succeeded",
                        "amount": cents, "currency": "EUR", "reference": id,
                        "description": "bench", "fee": 25, "livemode": false,
                        "hosted_url": format!("{base}/sandbox/pay/{gateway_ref}"),
                        "created": 1_700_000_000, "refunds": []
                    }),
                )
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{base}/webhooks/sandbox");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (notifications, next, errors, client, url) = (
            notifications.clone(),
            next.clone(),
            errors.clone(),
            client.clone(),
            url.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, signature)) = notifications.get(i) else {
                    break;
                };
                let ok = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Sandbox-Signature", signature)
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok((
        started.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed),
    ))
}

/// Downloads an export, reading it as it streams; returns (bytes, lines).
async fn download(url: &str, cookie: &str) -> anyhow::Result<(u64, u64)> {
    let mut response = reqwest::Client::new()
        .get(url)
        .header("Cookie", cookie)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("export answered {}", response.status());
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok((bytes, lines))
}
