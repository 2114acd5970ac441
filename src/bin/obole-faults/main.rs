//! The fault campaign: drives the real `obole` binary with thousands of signed sandbox
//! notifications (duplicates, some concurrent, some out of order) while it is killed with
//! SIGKILL and its database refuses work for a moment, retries as a gateway does, runs
//! `obole reconcile`, then checks that every successful payment was posted exactly once,
//! nothing else, and that the journal balances. Exits non-zero on any finding.
//!
//! Short form (CI): `obole-faults --database sqlite --notifications 300 --kills 3`.
//! Long form: `obole-faults --database postgres --notifications 10000 --kills 20`.

// actors and server are shared with obole-bench, which uses a few more of their items.
#[allow(dead_code)]
mod actors;
mod campaign;
mod check;
#[allow(dead_code)]
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use obole::domain::Money;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use actors::{Gateway, Member, notification};
use campaign::{Delivery, Notice, Story};
use check::Truth;
use server::{Database, Server};

#[derive(Parser)]
#[command(about = "Exactly-once under faults: kills, database outages, duplicate notifications")]
struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// PostgreSQL server to create the campaign's database on.
    #[arg(
        long,
        env = "OBOLE_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Notifications sent in all, duplicates included (30 % are duplicates).
    #[arg(long, default_value_t = 300)]
    notifications: usize,
    /// SIGKILLs of the server at random moments.
    #[arg(long, default_value_t = 3)]
    kills: usize,
    /// Moments when the database refuses work.
    #[arg(long, default_value_t = 2)]
    outages: usize,
    /// Notifications sent per second at most (0: as fast as they are answered). Paced, the
    /// sending lasts long enough for every kill and outage to fall while notifications arrive.
    #[arg(long, default_value_t = 200)]
    per_second: u32,
    /// Notifications in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long)]
    seed: Option<u64>,
    /// The obole binary (default: next to this one).
    #[arg(long)]
    obole: Option<PathBuf>,
    /// Keep the database and the server's log.
    #[arg(long)]
    keep: bool,
}

const MEMBERS: [(&str, &str); 2] = [
    ("membre@exemple.org", "membre-demo"),
    ("membre2@exemple.org", "membre2-demo"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
    let mut rng = StdRng::seed_from_u64(seed);
    let binary = match &args.obole {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .join("obole"),
    };
    let database = Database::create(&args.database, &args.postgres_url).await?;
    let workdir =
        std::env::temp_dir().join(format!("obole_faults_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir)?;
    println!(
        "fault campaign on {} (seed {seed}): {} notifications, {} kills, {} outages; log in {}",
        args.database,
        args.notifications,
        args.kills,
        args.outages,
        workdir.display()
    );
    let outcome = run(&args, &mut rng, &binary, &database, &workdir).await;
    if !args.keep && outcome.is_ok() {
        database.drop_all().await;
        let _ = std::fs::remove_dir_all(&workdir);
    }
    outcome
}

async fn run(
    args: &Args,
    rng: &mut StdRng,
    binary: &std::path::Path,
    database: &Database,
    workdir: &std::path::Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let url = database.url();
    let settings = obole::config::Settings::default();
    let pool = obole::db::connect(&url, 4).await?;
    obole::db::migrate(&pool).await?;
    obole::demo::seed(&pool, &settings.accounts).await?;
    let entries_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal_entries")
        .fetch_one(&pool)
        .await?;

    let emulator = server::start_emulator().await?;
    let port = server::free_port()?;
    let env: Vec<(String, String)> = [
        ("OBOLE_CONFIG", "/nonexistent/obole.toml".to_string()),
        ("OBOLE_DATABASE_URL", url.clone()),
        ("OBOLE_HOST", "127.0.0.1".into()),
        ("OBOLE_PORT", port.to_string()),
        ("OBOLE_WORKERS", "2".into()),
        ("OBOLE_SECRET_KEY", base64_key()),
        ("OBOLE_SANDBOX__EMULATOR", "false".into()),
        ("OBOLE_SANDBOX__API_BASE", format!("{emulator}/sandbox/api")),
        // The server's own sweep races the notifications: exactly once must still hold.
        ("OBOLE_RECONCILE__INTERVAL_SECS", "2".into()),
        ("OBOLE_RECONCILE__PENDING_AFTER_SECS", "1".into()),
        ("OBOLE_RECONCILE__LEASE_SECS", "1".into()),
        // SQLite writers give up after a second, so an outage is seen as one.
        ("OBOLE_DB_BUSY_TIMEOUT_MS", "1000".into()),
        (
            "OBOLE_MAIL__DIR",
            workdir.join("mail").display().to_string(),
        ),
        ("OBOLE_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut server = Server::new(binary, env, port, workdir.join("obole.log"));
    server.start().await?;

    // The stories, and the attempts members start for them through the pages.
    let duplicates = args.notifications * 3 / 10;
    let stories = campaign::plan(rng, args.notifications - duplicates);
    let amounts: Vec<Vec<i64>> = stories
        .iter()
        .map(|s| {
            (0..s.attempts())
                .map(|_| rng.gen_range(100..50_000))
                .collect()
        })
        .collect();
    let attempts = start_attempts(&server.address, &pool, &amounts).await?;
    let created = Instant::now();

    // The gateway settles each story and writes the notifications it sends.
    let gateway = Gateway::new(&emulator);
    let mut truths = Vec::new();
    let mut chains = Vec::new();
    for (story, refs) in stories.iter().zip(&attempts) {
        let (chain, truth) = settle(&gateway, *story, refs, rng).await?;
        chains.push(chain);
        truths.extend(truth);
    }
    let jobs = campaign::add_duplicates(rng, &mut chains, duplicates);
    let sends: usize = args.notifications;

    // Delivery, with kills and outages at random points of it.
    let delivery = Arc::new(Delivery::default());
    let deadline = Instant::now() + Duration::from_secs(120 + args.notifications as u64 / 20);
    // Jobs are chains of one or more notices: spread the jobs so the notices come at the rate.
    let spacing = if args.per_second == 0 || jobs.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(sends as f64 / f64::from(args.per_second) / jobs.len() as f64)
    };
    let sender = tokio::spawn(campaign::deliver(
        format!("{}/webhooks/sandbox", server.address),
        jobs,
        args.concurrency,
        spacing,
        delivery.clone(),
        deadline,
    ));
    let mut events: Vec<(usize, bool)> = (0..args.kills + args.outages)
        .map(|i| (rng.gen_range(sends / 20..=sends * 9 / 10), i < args.kills))
        .collect();
    events.sort();
    let (mut kills, mut outages) = (0, 0);
    for (at, is_kill) in events {
        while delivery.delivered.load(Ordering::Relaxed) < at && !sender.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if is_kill {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..50))).await;
            server.kill()?;
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(50..400))).await;
            server.start().await?;
        } else {
            database
                .outage(Duration::from_millis(rng.gen_range(1_500..3_000)))
                .await
                .context("could not cause an outage")?;
            outages += 1;
        }
    }
    sender.await?;
    let delivered_in = created.elapsed();

    // What the notifications did not settle, the sweep does.
    server.kill()?;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let swept = server.reconcile(&[
        ("OBOLE_RECONCILE__PENDING_AFTER_SECS", "-1"),
        ("OBOLE_RECONCILE__EXPIRE_AFTER_SECS", "-1"),
    ])?;

    pool.close().await;
    let pool = obole::db::connect(&url, 2).await?;
    let findings = check::verify(&pool, &truths, entries_before).await?;
    pool.close().await;

    let d = &delivery;
    let count = |stories: &[Story], wanted: Story| stories.iter().filter(|s| **s == wanted).count();
    println!(
        "stories: {} payments, {} attempts",
        stories.len(),
        truths.len()
    );
    for story in [
        Story::Paid,
        Story::RefusedThenPaid,
        Story::PaidThenStaleNotice,
        Story::RefundBeforeCapture,
        Story::Refused,
        Story::Lost,
        Story::Abandoned,
    ] {
        println!("  {story:?}: {}", count(&stories, story));
    }
    println!(
        "notifications: {} sent ({} unique, {} duplicates) in {:.1} s; {} HTTP requests: \
         {} answered 2xx, {} 5xx, {} no answer, {} 4xx",
        d.delivered.load(Ordering::Relaxed),
        args.notifications - duplicates,
        duplicates,
        delivered_in.as_secs_f64(),
        d.requests.load(Ordering::Relaxed),
        d.answered_2xx.load(Ordering::Relaxed),
        d.answered_5xx.load(Ordering::Relaxed),
        d.no_answer.load(Ordering::Relaxed),
        d.answered_4xx.load(Ordering::Relaxed),
    );
    println!(
        "faults: {kills} SIGKILLs ({} starts), {outages} database outages; {} notifications \
         got a 5xx or no answer and succeeded on a retry, {} never did",
        server.starts,
        d.retried_then_ok.load(Ordering::Relaxed),
        d.gave_up.load(Ordering::Relaxed),
    );
    println!("final sweep: {swept}");
    println!(
        "posted: {} captures, {} refunds; journal debit {} = credit {}; payments by status {:?}",
        findings.captures_posted,
        findings.refunds_posted,
        Money::from_cents(findings.debit),
        Money::from_cents(findings.credit),
        findings.statuses
    );
    println!("notification verdicts: {:?}", findings.verdicts);
    println!("done in {:.1} s", started.elapsed().as_secs_f64());

    let mut problems = findings.problems;
    if d.gave_up.load(Ordering::Relaxed) > 0 {
        problems.push("some notifications were never answered 2xx".into());
    }
    let hit = d.answered_5xx.load(Ordering::Relaxed) + d.no_answer.load(Ordering::Relaxed);
    if kills + outages > 0 && hit == 0 {
        problems.push(
            "no fault met a notification in flight: the campaign proved nothing (lower --per-second)"
                .into(),
        );
    }
    if d.answered_4xx.load(Ordering::Relaxed) > 0 {
        problems.push("genuine notifications were refused with a 4xx".into());
    }
    if d.delivered.load(Ordering::Relaxed) != sends {
        problems.push(format!(
            "{} notifications delivered of {sends}",
            d.delivered.load(Ordering::Relaxed)
        ));
    }
    if problems.is_empty() {
        println!("OK: every successful payment posted exactly once, nothing else posted");
        Ok(())
    } else {
        for problem in problems.iter().take(30) {
            eprintln!("FAIL: {problem}");
        }
        bail!("{} problems found", problems.len())
    }
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([42u8; 64])
}

/// Members start the attempts through the pages, a few at once; returns the gateway
/// references and obole's ids, per story.
async fn start_attempts(
    base: &str,
    pool: &obole::db::Pool,
    amounts: &[Vec<i64>],
) -> anyhow::Result<Vec<Vec<(String, String, i64)>>> {
    let wanted: Vec<(usize, i64)> = amounts
        .iter()
        .enumerate()
        .flat_map(|(story, cents)| cents.iter().map(move |c| (story, *c)))
        .collect();
    let browsers = 4;
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..browsers {
        let (email, password) = MEMBERS[b % MEMBERS.len()];
        let mut member = Member::log_in(base, email, password).await?;
        let mine: Vec<(usize, usize, i64)> = wanted
            .iter()
            .enumerate()
            .filter(|(i, _)| i % browsers == b)
            .map(|(i, (story, cents))| (i, *story, *cents))
            .collect();
        tasks.spawn(async move {
            let mut started = Vec::new();
            for (i, story, cents) in mine {
                // A gateway that drops a connection gets a 502; the member clicks again.
                let mut tries = 0;
                let gateway_ref = loop {
                    match member.pay(Money::from_cents(cents)).await {
                        Ok(gateway_ref) => break gateway_ref,
                        Err(error) if tries < 5 => {
                            tries += 1;
                            eprintln!("a payment could not start ({error}); trying again");
                        }
                        Err(error) => return Err(error),
                    }
                };
                started.push((i, story, gateway_ref, cents));
            }
            anyhow::Ok(started)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.sort();
    let mut per_story: Vec<Vec<(String, String, i64)>> = vec![Vec::new(); amounts.len()];
    for (_, story, gateway_ref, cents) in all {
        let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE gateway_ref = $1")
            .bind(&gateway_ref)
            .fetch_one(pool)
            .await
            .context("the attempt behind a hosted page")?;
        per_story[story].push((id, gateway_ref, cents));
    }
    Ok(per_story)
}

fn notice(kind: &str, snapshot: &Value) -> Notice {
    let (body, signature) = notification(kind, snapshot);
    Notice {
        body: Arc::new(body),
        signature: Arc::new(signature),
        concurrent_copies: 0,
    }
}

/// Settles the story at the gateway; returns the notices it sends, in order, and the truth.
async fn settle(
    gateway: &Gateway,
    story: Story,
    attempts: &[(String, String, i64)],
    rng: &mut StdRng,
) -> anyhow::Result<(Vec<Notice>, Vec<Truth>)> {
    let truth = |(id, gateway_ref, cents): &(String, String, i64), captured: bool| Truth {
        payment_id: id.clone(),
        gateway_ref: gateway_ref.clone(),
        amount: *cents,
        captured,
        refunds: Vec::new(),
    };
    let first = &attempts[0];
    Ok(match story {
        Story::Paid => {
            gateway.settle(&first.1, "paid").await?;
            let paid = gateway.snapshot(&first.1).await?;
            (vec![notice("succeeded", &paid)], vec![truth(first, true)])
        }
        Story::Lost => {
            gateway.settle(&first.1, "paid").await?;
            (Vec::new(), vec![truth(first, true)])
        }
        Story::Abandoned => (Vec::new(), vec![truth(first, false)]),
        Story::Refused => {
            gateway.settle(&first.1, "refused").await?;
            let refused = gateway.snapshot(&first.1).await?;
            (vec![notice("refused", &refused)], vec![truth(first, false)])
        }
        Story::RefusedThenPaid => {
            let second = &attempts[1];
            gateway.settle(&first.1, "refused").await?;
            let refused = gateway.snapshot(&first.1).await?;
            gateway.settle(&second.1, "paid").await?;
            let paid = gateway.snapshot(&second.1).await?;
            (
                vec![notice("refused", &refused), notice("succeeded", &paid)],
                vec![truth(first, false), truth(second, true)],
            )
        }
        Story::PaidThenStaleNotice => {
            let open = gateway.snapshot(&first.1).await?;
            gateway.settle(&first.1, "paid").await?;
            let paid = gateway.snapshot(&first.1).await?;
            (
                vec![notice("succeeded", &paid), notice("created", &open)],
                vec![truth(first, true)],
            )
        }
        Story::RefundBeforeCapture => {
            gateway.settle(&first.1, "paid").await?;
            let paid = gateway.snapshot(&first.1).await?;
            let cents = rng.gen_range(1..first.2);
            let refund_id = gateway.refund(&first.1, cents).await?;
            let refunded = gateway.snapshot(&first.1).await?;
            let mut t = truth(first, true);
            t.refunds.push((refund_id, cents));
            (
                vec![notice("refunded", &refunded), notice("succeeded", &paid)],
                vec![t],
            )
        }
    })
}
