//! What happens to each payment, and the delivery of the notifications under faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// What happens to a payment at the gateway, and so which notifications it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Story {
    /// Paid; one notice.
    Paid,
    /// A first attempt refused, then a second one paid: two attempts, two notices.
    RefusedThenPaid,
    /// Paid; the notice of the earlier open state arrives after the payment notice.
    PaidThenStaleNotice,
    /// Paid then partly refunded at the gateway; the refund's notice arrives first.
    RefundBeforeCapture,
    /// Refused; one notice.
    Refused,
    /// Paid, but every notice was lost: only the sweep can learn it.
    Lost,
    /// Left on the hosted page; the final sweep expires it.
    Abandoned,
}

impl Story {
    pub fn attempts(self) -> usize {
        match self {
            Story::RefusedThenPaid => 2,
            _ => 1,
        }
    }

    pub fn notices(self) -> usize {
        match self {
            Story::Paid | Story::Refused => 1,
            Story::RefusedThenPaid | Story::PaidThenStaleNotice | Story::RefundBeforeCapture => 2,
            Story::Lost | Story::Abandoned => 0,
        }
    }

    fn pick(rng: &mut StdRng) -> Story {
        match rng.gen_range(0..100) {
            0..40 => Story::Paid,
            40..55 => Story::RefusedThenPaid,
            55..70 => Story::PaidThenStaleNotice,
            70..85 => Story::RefundBeforeCapture,
            85..94 => Story::Refused,
            94..97 => Story::Lost,
            _ => Story::Abandoned,
        }
    }
}

/// Stories whose notices add up to `unique` (the rest of the campaign's count is duplicates).
pub fn plan(rng: &mut StdRng, unique: usize) -> Vec<Story> {
    let mut stories = Vec::new();
    let mut notices = 0;
    while notices < unique {
        let story = Story::pick(rng);
        if notices + story.notices() > unique {
            stories.push(Story::Paid);
            notices += 1;
            continue;
        }
        notices += story.notices();
        stories.push(story);
    }
    stories
}

/// One notification as signed by the gateway, and how many extra copies it sends.
#[derive(Clone)]
pub struct Notice {
    pub body: Arc<Vec<u8>>,
    pub signature: Arc<String>,
    /// Copies sent at the same moment as the notice itself.
    pub concurrent_copies: usize,
}

/// Work for the delivery: a chain of notices sent in this order (each once answered 2xx),
/// or a late duplicate sent alone.
pub enum Job {
    Chain(Vec<Notice>),
    Late(Notice),
}

/// Spreads `duplicates` extra copies over the notices: half at once, half later.
pub fn add_duplicates(rng: &mut StdRng, chains: &mut [Vec<Notice>], duplicates: usize) -> Vec<Job> {
    let total: usize = chains.iter().map(Vec::len).sum();
    let mut late = Vec::new();
    if total > 0 {
        for _ in 0..duplicates {
            let mut pick = rng.gen_range(0..total);
            let (chain, index) = chains
                .iter()
                .enumerate()
                .find_map(|(c, chain)| {
                    if pick < chain.len() {
                        Some((c, pick))
                    } else {
                        pick -= chain.len();
                        None
                    }
                })
                .unwrap_or((0, 0));
            if rng.gen_bool(0.5) {
                chains[chain][index].concurrent_copies += 1;
            } else {
                late.push(Job::Late(chains[chain][index].clone()));
            }
        }
    }
    let mut jobs: Vec<Job> = chains
        .iter_mut()
        .map(|chain| Job::Chain(std::mem::take(chain)))
        .collect();
    jobs.extend(late);
    jobs.shuffle(rng);
    jobs
}

/// What the gateway saw while delivering.
#[derive(Default)]
pub struct Delivery {
    /// Notifications delivered (each copy counts), answered 2xx in the end.
    pub delivered: AtomicUsize,
    /// HTTP requests sent, retries included.
    pub requests: AtomicU64,
    pub answered_2xx: AtomicU64,
    pub answered_5xx: AtomicU64,
    pub no_answer: AtomicU64,
    pub answered_4xx: AtomicU64,
    /// Notifications that got a 5xx or no answer at least once, then a 2xx.
    pub retried_then_ok: AtomicU64,
    /// Notifications never answered 2xx before the deadline.
    pub gave_up: AtomicU64,
}

/// Sends one notification until obole answers 2xx, as a gateway retries.
async fn send(
    client: &reqwest::Client,
    url: &str,
    notice: &Notice,
    delivery: &Delivery,
    deadline: Instant,
) {
    let mut failed_before = false;
    let mut wait = Duration::from_millis(50);
    loop {
        delivery.requests.fetch_add(1, Ordering::Relaxed);
        let answer = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Sandbox-Signature", notice.signature.as_str())
            .body(notice.body.as_ref().clone())
            .send()
            .await;
        match answer.map(|r| r.status().as_u16()) {
            Ok(200..=299) => {
                delivery.answered_2xx.fetch_add(1, Ordering::Relaxed);
                if failed_before {
                    delivery.retried_then_ok.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            Ok(400..=499) => {
                // A genuine notification refused: a defect the checks will report.
                delivery.answered_4xx.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(_) => {
                delivery.answered_5xx.fetch_add(1, Ordering::Relaxed);
                failed_before = true;
            }
            Err(_) => {
                delivery.no_answer.fetch_add(1, Ordering::Relaxed);
                failed_before = true;
            }
        }
        if Instant::now() > deadline {
            delivery.gave_up.fetch_add(1, Ordering::Relaxed);
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
    delivery.delivered.fetch_add(1, Ordering::Relaxed);
}

async fn run_job(
    client: reqwest::Client,
    url: String,
    job: Job,
    delivery: Arc<Delivery>,
    deadline: Instant,
) {
    match job {
        Job::Late(notice) => send(&client, &url, &notice, &delivery, deadline).await,
        Job::Chain(notices) => {
            for notice in notices {
                let copies = (0..=notice.concurrent_copies)
                    .map(|_| {
                        let (client, url, notice, delivery) = (
                            client.clone(),
                            url.clone(),
                            notice.clone(),
                            delivery.clone(),
                        );
                        tokio::spawn(async move {
                            send(&client, &url, &notice, &delivery, deadline).await
                        })
                    })
                    .collect::<Vec<_>>();
                for copy in copies {
                    let _ = copy.await;
                }
            }
        }
    }
}

/// Delivers every job, `concurrency` at a time, a job started every `spacing` at most, so that
/// the sending spans the campaign's faults instead of ending before the first one.
pub async fn deliver(
    url: String,
    jobs: Vec<Job>,
    concurrency: usize,
    spacing: Duration,
    delivery: Arc<Delivery>,
    deadline: Instant,
) {
    let mut pace = tokio::time::interval(spacing.max(Duration::from_micros(1)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default();
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for job in jobs {
        pace.tick().await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, url, delivery) = (client.clone(), url.clone(), delivery.clone());
        running.spawn(async move {
            run_job(client, url, job, delivery, deadline).await;
            drop(permit);
        });
    }
    while running.join_next().await.is_some() {}
}
