//! `dsync bench`: an end-to-end load generator against a running cluster.
//!
//! Many concurrent clients run cycles for a fixed time, spreading requests
//! over every `--endpoint`, with a live progress line on stderr and a final
//! table of throughput, cycle latency percentiles and errors.
//!
//! - `dsync bench lock`: acquire+release cycles. `--contended` makes every
//!   client fight over one lock (blocking acquires); otherwise each client
//!   has its own locks and the figure is the cluster's commit throughput.
//! - `dsync bench queue`: produce (`--batch` messages in one request),
//!   consume them back and ack them; throughput counts messages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// What to load.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Workload {
    /// Acquire+release cycles of locks.
    Lock,
    /// Produce, consume and ack cycles of queue messages.
    Queue,
}

/// Settings of a benchmark run.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Nodes to send requests to, round robin (repeat the flag for several).
    #[arg(long = "endpoint", default_value = "http://127.0.0.1:8001")]
    pub endpoints: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// lock: every client uses the same lock (blocking acquires, wait_ms 10000).
    #[arg(long)]
    pub contended: bool,
    /// queue: messages per produce request (and per consume).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,
}

/// Counters shared by the clients.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Runs the benchmark and prints its table.
pub async fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let endpoints: Vec<String> = args.endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients as usize).build()?;
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.duration);
    let workers: Vec<_> = (0..args.clients)
        .map(|id| {
            let worker = Worker {
                id,
                endpoints: endpoints.clone(),
                client: client.clone(),
                tally: tally.clone(),
                latencies: latencies.clone(),
                workload: args.workload,
                contended: args.contended,
                batch: args.batch,
            };
            tokio::spawn(worker.run(stop_at))
        })
        .collect();

    let unit = match args.workload {
        Workload::Lock => "cycles",
        Workload::Queue => "msgs",
    };
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    while Instant::now() < stop_at {
        progress.tick().await;
        let secs = started.elapsed().as_secs_f64();
        let ok = tally.ok.load(Ordering::Relaxed);
        eprint!(
            "\r{:>5.1}s  {:>8} {unit}  {:>9.0} {unit}/s  {:>5} errors",
            secs,
            ok,
            ok as f64 / secs,
            tally.errors.load(Ordering::Relaxed)
        );
    }
    for worker in workers {
        worker.await?;
    }
    eprintln!();
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = latencies.lock().map_err(|_| "latency histogram poisoned")?;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let ok = tally.ok.load(Ordering::Relaxed);
    let setup = match args.workload {
        Workload::Lock if args.contended => "lock, contended: one lock".to_string(),
        Workload::Lock => "lock, uncontended".to_string(),
        Workload::Queue => format!("queue, produce+consume+ack, batch {}", args.batch),
    };
    println!("workload     {setup} ({} clients, {} endpoints, {:.1}s)", args.clients, endpoints.len(), elapsed);
    println!("{unit:<12} {ok}");
    println!("{:<12} {:.0}", format!("{unit}/s"), ok as f64 / elapsed);
    println!("cycle p50    {:.2} ms", ms(0.50));
    println!("cycle p99    {:.2} ms", ms(0.99));
    println!("cycle p99.9  {:.2} ms", ms(0.999));
    println!("errors       {}", tally.errors.load(Ordering::Relaxed));
    Ok(())
}

/// One client: runs its workload's cycle until the time is up.
struct Worker {
    id: u32,
    endpoints: Vec<String>,
    client: reqwest::Client,
    tally: Arc<Tally>,
    latencies: Arc<Mutex<Histogram<u64>>>,
    workload: Workload,
    contended: bool,
    batch: u32,
}

impl Worker {
    async fn run(self, stop_at: Instant) {
        let mut cycle: u64 = 0;
        while Instant::now() < stop_at {
            let endpoint = &self.endpoints[(self.id as usize + cycle as usize) % self.endpoints.len()];
            let started = Instant::now();
            let done = match self.workload {
                Workload::Lock => self.lock_cycle(endpoint, cycle).await,
                Workload::Queue => self.queue_cycle(endpoint).await,
            };
            match done {
                Some(units) => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    if let Ok(mut histogram) = self.latencies.lock() {
                        histogram.saturating_record(micros);
                    }
                    self.tally.ok.fetch_add(units, Ordering::Relaxed);
                }
                None => {
                    self.tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            cycle += 1;
        }
    }

    /// Acquire then release a lock; one unit.
    async fn lock_cycle(&self, endpoint: &str, cycle: u64) -> Option<u64> {
        let owner = format!("bench-client-{}", self.id);
        let resource =
            if self.contended { "bench-hot".to_string() } else { format!("bench-{}-{}", self.id, cycle % 64) };
        let wait_ms = if self.contended { 10_000 } else { 0 };
        let acquire = json!({"resource": resource, "owner": owner, "ttl_ms": 30_000, "wait_ms": wait_ms});
        self.post(endpoint, "/locks/acquire", &acquire).await?;
        self.post(endpoint, "/locks/release", &json!({"resource": resource, "owner": owner})).await?;
        Some(1)
    }

    /// Produce a batch, consume it back, ack what came; units are the
    /// messages acked.
    async fn queue_cycle(&self, endpoint: &str) -> Option<u64> {
        let queue = format!("bench-{}", self.id % 4);
        let messages: Vec<Value> = (0..self.batch).map(|i| json!({"client": self.id, "n": i})).collect();
        self.post(endpoint, "/queue/produce", &json!({"queue": queue, "messages": messages})).await?;
        let consume = json!({"queue": queue, "consumer": format!("bench-{}", self.id), "max": self.batch, "visibility_ms": 30_000});
        let consumed = self.post(endpoint, "/queue/consume", &consume).await?;
        let ids: Vec<Value> = consumed["messages"].as_array()?.iter().map(|m| m["id"].clone()).collect();
        if ids.is_empty() {
            return Some(0);
        }
        let acked = self.post(endpoint, "/queue/ack", &json!({"queue": queue, "ids": ids})).await?;
        acked["acked"].as_u64()
    }

    /// POSTs `body`; the JSON answer of a 2xx reply, `None` otherwise.
    async fn post(&self, endpoint: &str, path: &str, body: &Value) -> Option<Value> {
        let reply = self.client.post(format!("{endpoint}{path}")).json(body).send().await.ok()?;
        if !reply.status().is_success() {
            return None;
        }
        reply.json().await.ok()
    }
}
