//! `dsync bench`: an end-to-end load generator against a running cluster.
//!
//! `dsync bench lock` runs acquire+release cycles from many concurrent
//! clients for a fixed time, spreading requests over every `--endpoint`,
//! with a live progress line on stderr and a final table of cycles/s,
//! latency percentiles and errors. `--contended` makes every client fight
//! over one lock (blocking acquires); otherwise each client has its own
//! locks and the figure is the cluster's commit throughput.

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
    /// Every client uses the same lock (blocking acquires, wait_ms 10000).
    #[arg(long)]
    pub contended: bool,
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
                contended: args.contended,
            };
            tokio::spawn(worker.run(stop_at))
        })
        .collect();

    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    while Instant::now() < stop_at {
        progress.tick().await;
        let secs = started.elapsed().as_secs_f64();
        let ok = tally.ok.load(Ordering::Relaxed);
        eprint!(
            "\r{:>5.1}s  {:>8} cycles  {:>9.0} cycles/s  {:>5} errors",
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
    println!(
        "workload     lock ({}, {} clients, {} endpoints, {:.1}s)",
        if args.contended { "contended: one lock" } else { "uncontended" },
        args.clients,
        endpoints.len(),
        elapsed
    );
    println!("cycles       {ok}");
    println!("cycles/s     {:.0}", ok as f64 / elapsed);
    println!("p50          {:.2} ms", ms(0.50));
    println!("p99          {:.2} ms", ms(0.99));
    println!("p99.9        {:.2} ms", ms(0.999));
    println!("errors       {}", tally.errors.load(Ordering::Relaxed));
    Ok(())
}

/// One client: acquire, release, repeat.
struct Worker {
    id: u32,
    endpoints: Vec<String>,
    client: reqwest::Client,
    tally: Arc<Tally>,
    latencies: Arc<Mutex<Histogram<u64>>>,
    contended: bool,
}

impl Worker {
    async fn run(self, stop_at: Instant) {
        let owner = format!("bench-client-{}", self.id);
        let mut cycle: u64 = 0;
        while Instant::now() < stop_at {
            let resource =
                if self.contended { "bench-hot".to_string() } else { format!("bench-{}-{}", self.id, cycle % 64) };
            let endpoint = &self.endpoints[(self.id as usize + cycle as usize) % self.endpoints.len()];
            let started = Instant::now();
            let wait_ms = if self.contended { 10_000 } else { 0 };
            let acquire = json!({"resource": resource, "owner": owner, "ttl_ms": 30_000, "wait_ms": wait_ms});
            let ok = self.post(endpoint, "/locks/acquire", &acquire).await
                && self.post(endpoint, "/locks/release", &json!({"resource": resource, "owner": owner})).await;
            if ok {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut histogram) = self.latencies.lock() {
                    histogram.saturating_record(micros);
                }
                self.tally.ok.fetch_add(1, Ordering::Relaxed);
            } else {
                self.tally.errors.fetch_add(1, Ordering::Relaxed);
            }
            cycle += 1;
        }
    }

    /// POSTs `body`; true on a 2xx answer.
    async fn post(&self, endpoint: &str, path: &str, body: &Value) -> bool {
        let reply = self.client.post(format!("{endpoint}{path}")).json(body).send().await;
        matches!(reply, Ok(r) if r.status().is_success())
    }
}
