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
//! - `dsync bench cache`: single gets and puts on the coherent cache. Every
//!   key of `--keys` (`bench-key-1` ... `bench-key-N`) is first put once,
//!   untimed; then each operation goes to a random endpoint (each node has its
//!   own LRU), picks a Zipf-distributed key (`--zipf` exponent, rank 1 is the
//!   hottest) and is a get with probability `--read-ratio`, else a put of a
//!   fresh `--value-bytes` value. The table gives get and put latencies
//!   separately, the operation mix, and the hit ratio: the share of gets a
//!   node answered from its own LRU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures_util::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;
use serde_json::{json, Value};

/// What to load.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Workload {
    /// Acquire+release cycles of locks.
    Lock,
    /// Produce, consume and ack cycles of queue messages.
    Queue,
    /// Zipf-distributed gets and puts on the coherent cache.
    Cache,
}

/// Settings of a benchmark run.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Nodes to send requests to, round robin; cache: a random one per
    /// operation (repeat the flag for several).
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
    /// cache: size of the key space, `bench-key-1` ... `bench-key-<keys>`;
    /// all are put once before the timed run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub keys: u64,
    /// cache: exponent s of the Zipf key distribution (0 is uniform; the
    /// larger, the more the hottest keys dominate and the higher the hit
    /// ratio of the nodes' LRUs).
    #[arg(long, default_value_t = 1.1, value_parser = zipf_exponent)]
    pub zipf: f64,
    /// cache: fraction of operations that are gets (the rest are puts), 0 to 1.
    #[arg(long, default_value_t = 0.9, value_parser = fraction)]
    pub read_ratio: f64,
    /// cache: length in bytes of the JSON string value of each put.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=16 * 1024 * 1024))]
    pub value_bytes: u32,
    /// Print the final figures as one JSON object on stdout (for scripts)
    /// instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a Zipf exponent: finite and not negative.
fn zipf_exponent(text: &str) -> Result<f64, String> {
    let s: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if s.is_finite() && s >= 0.0 {
        Ok(s)
    } else {
        Err(format!("{s} is not a Zipf exponent (a number >= 0)"))
    }
}

/// Parses a fraction between 0 and 1 inclusive.
fn fraction(text: &str) -> Result<f64, String> {
    let p: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0 and 1"))
    }
}

/// Counters shared by the clients.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
    /// cache: successful gets (the other successful operations are puts).
    gets: AtomicU64,
    /// cache: gets the node answered from its own LRU.
    hits: AtomicU64,
}

/// What a timed unit of work was, to pick its latency histogram.
#[derive(Debug, Clone, Copy)]
enum Timed {
    /// A lock or queue cycle.
    Cycle,
    /// A cache get; `hit` if the node answered from its own LRU.
    Get { hit: bool },
    /// A cache put.
    Put,
}

/// Latency histograms in microseconds, one per kind of timed unit.
struct Latencies {
    cycle: Histogram<u64>,
    get: Histogram<u64>,
    put: Histogram<u64>,
}

impl Latencies {
    fn new() -> Result<Self, hdrhistogram::CreationError> {
        let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Latencies { cycle: histogram()?, get: histogram()?, put: histogram()? })
    }

    fn of(&mut self, timed: Timed) -> &mut Histogram<u64> {
        match timed {
            Timed::Cycle => &mut self.cycle,
            Timed::Get { .. } => &mut self.get,
            Timed::Put => &mut self.put,
        }
    }
}

/// The cache key of Zipf rank `rank` (1 is the hottest).
fn cache_key(rank: u64) -> String {
    format!("bench-key-{rank}")
}

/// A cache value of exactly `bytes` ASCII bytes starting with `tag`, so that
/// every put writes a fresh value.
fn cache_value(tag: &str, bytes: usize) -> String {
    let mut value = String::with_capacity(bytes.max(tag.len()));
    value.push_str(tag);
    value.truncate(bytes);
    while value.len() < bytes {
        value.push('x');
    }
    value
}

/// Runs the benchmark and prints its table.
pub async fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let endpoints: Vec<String> = args.endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients as usize).build()?;
    let zipf = Zipf::new(args.keys as f64, args.zipf)?;
    if let Workload::Cache = args.workload {
        prefill(&client, &endpoints, &args).await?;
    }
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Mutex::new(Latencies::new()?));
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
                rng: SmallRng::from_os_rng(),
                zipf,
                read_ratio: args.read_ratio,
                value_bytes: args.value_bytes as usize,
            };
            tokio::spawn(worker.run(stop_at))
        })
        .collect();

    let unit = match args.workload {
        Workload::Lock => "cycles",
        Workload::Queue => "msgs",
        Workload::Cache => "ops",
    };
    let hit_ratio = || {
        let gets = tally.gets.load(Ordering::Relaxed);
        (gets > 0).then(|| tally.hits.load(Ordering::Relaxed) as f64 / gets as f64)
    };
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    while Instant::now() < stop_at {
        progress.tick().await;
        let secs = started.elapsed().as_secs_f64();
        let ok = tally.ok.load(Ordering::Relaxed);
        let hits = match (args.workload, hit_ratio()) {
            (Workload::Cache, Some(ratio)) => format!("  {:>5.1}% hits", ratio * 100.0),
            _ => String::new(),
        };
        eprint!(
            "\r{:>5.1}s  {:>8} {unit}  {:>9.0} {unit}/s  {:>5} errors{hits}",
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
    let mut latencies = latencies.lock().map_err(|_| "latency histograms poisoned")?;
    let ok = tally.ok.load(Ordering::Relaxed);
    let setup = match args.workload {
        Workload::Lock if args.contended => "lock, contended: one lock".to_string(),
        Workload::Lock => "lock, uncontended".to_string(),
        Workload::Queue => format!("queue, produce+consume+ack, batch {}", args.batch),
        Workload::Cache => format!(
            "cache, {} keys, zipf s={}, {:.0}% gets, {}-byte values",
            args.keys,
            args.zipf,
            args.read_ratio * 100.0,
            args.value_bytes
        ),
    };
    let errors = tally.errors.load(Ordering::Relaxed);
    let gets = tally.gets.load(Ordering::Relaxed);
    let rows: &[(&str, Timed)] = match args.workload {
        Workload::Lock | Workload::Queue => &[("cycle", Timed::Cycle)],
        Workload::Cache => &[("get", Timed::Get { hit: false }), ("put", Timed::Put)],
    };
    // Latency quantiles in milliseconds by row, `None` when nothing was timed.
    let quantiles: Vec<(&str, Option<[f64; 3]>)> = rows
        .iter()
        .map(|&(name, timed)| {
            let histogram = latencies.of(timed);
            let at = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
            (name, (!histogram.is_empty()).then(|| [at(0.50), at(0.99), at(0.999)]))
        })
        .collect();
    if args.json {
        let latency: serde_json::Map<String, Value> = quantiles
            .iter()
            .map(|(name, q)| {
                (name.to_string(), q.map_or(Value::Null, |q| json!({"p50": q[0], "p99": q[1], "p99_9": q[2]})))
            })
            .collect();
        let mut summary = json!({
            "workload": setup, "clients": args.clients, "endpoints": endpoints.len(), "seconds": elapsed,
            "unit": unit, "completed": ok, "per_second": ok as f64 / elapsed, "errors": errors, "latency_ms": latency,
        });
        if let Workload::Cache = args.workload {
            summary["gets"] = json!(gets);
            summary["puts"] = json!(ok - gets);
            summary["hit_ratio"] = json!(hit_ratio());
        }
        println!("{summary}");
        return Ok(());
    }
    println!("workload     {setup} ({} clients, {} endpoints, {:.1}s)", args.clients, endpoints.len(), elapsed);
    println!("{unit:<12} {ok}");
    println!("{:<12} {:.0}", format!("{unit}/s"), ok as f64 / elapsed);
    if let Workload::Cache = args.workload {
        let percent = |part: u64| if ok > 0 { part as f64 * 100.0 / ok as f64 } else { 0.0 };
        println!("gets         {gets} ({:.1}%)", percent(gets));
        println!("puts         {} ({:.1}%)", ok - gets, percent(ok - gets));
        match hit_ratio() {
            Some(ratio) => println!(
                "hit ratio    {:.1}% ({} of {gets} gets from the node's LRU)",
                ratio * 100.0,
                tally.hits.load(Ordering::Relaxed)
            ),
            None => println!("hit ratio    -"),
        }
    }
    for (name, q) in &quantiles {
        for (i, label) in ["p50", "p99", "p99.9"].iter().enumerate() {
            let label = format!("{name} {label}");
            match q {
                Some(q) => println!("{label:<12} {:.2} ms", q[i]),
                None => println!("{label:<12} -"),
            }
        }
    }
    println!("errors       {errors}");
    Ok(())
}

/// cache: puts every key once, spread over the endpoints, `--clients` at a
/// time, so that no timed get finds a key missing. Fails if any put fails.
async fn prefill(client: &reqwest::Client, endpoints: &[String], args: &BenchArgs) -> Result<(), String> {
    let started = Instant::now();
    let value_bytes = args.value_bytes as usize;
    let failed = stream::iter(1..=args.keys)
        .map(|rank| {
            let endpoint = &endpoints[(rank as usize) % endpoints.len()];
            let key = cache_key(rank);
            let body = json!({"key": key, "value": cache_value(&format!("prefill-{rank}-"), value_bytes)});
            async move { post(client, endpoint, "/cache/put", &body).await.is_none() }
        })
        .buffer_unordered(args.clients.max(1) as usize)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failed > 0 {
        return Err(format!("prefill: {failed} of {} cache puts failed", args.keys));
    }
    eprintln!("prefill: put {} keys in {:.1}s", args.keys, started.elapsed().as_secs_f64());
    Ok(())
}

/// One client: runs its workload's cycle until the time is up.
struct Worker {
    id: u32,
    endpoints: Vec<String>,
    client: reqwest::Client,
    tally: Arc<Tally>,
    latencies: Arc<Mutex<Latencies>>,
    workload: Workload,
    contended: bool,
    batch: u32,
    rng: SmallRng,
    zipf: Zipf<f64>,
    read_ratio: f64,
    value_bytes: usize,
}

impl Worker {
    async fn run(mut self, stop_at: Instant) {
        let mut cycle: u64 = 0;
        while Instant::now() < stop_at {
            let started = Instant::now();
            let done = match self.workload {
                Workload::Lock => {
                    let endpoint = self.round_robin(cycle);
                    self.lock_cycle(endpoint, cycle).await.map(|units| (Timed::Cycle, units))
                }
                Workload::Queue => {
                    let endpoint = self.round_robin(cycle);
                    self.queue_cycle(endpoint).await.map(|units| (Timed::Cycle, units))
                }
                Workload::Cache => self.cache_op(cycle).await.map(|timed| (timed, 1)),
            };
            match done {
                Some((timed, units)) => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    if let Ok(mut latencies) = self.latencies.lock() {
                        latencies.of(timed).saturating_record(micros);
                    }
                    self.tally.ok.fetch_add(units, Ordering::Relaxed);
                    if let Timed::Get { hit } = timed {
                        self.tally.gets.fetch_add(1, Ordering::Relaxed);
                        if hit {
                            self.tally.hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                None => {
                    self.tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            cycle += 1;
        }
    }

    /// The endpoint of a lock or queue cycle: round robin, offset by client.
    fn round_robin(&self, cycle: u64) -> &str {
        &self.endpoints[(self.id as usize + cycle as usize) % self.endpoints.len()]
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

    /// One cache operation on a random endpoint and a Zipf-distributed key:
    /// a get with probability `read_ratio`, else a put of a fresh value.
    async fn cache_op(&mut self, cycle: u64) -> Option<Timed> {
        let endpoint = &self.endpoints[self.rng.random_range(0..self.endpoints.len())];
        // Zipf samples are whole numbers in 1..=keys.
        let key = cache_key(self.rng.sample(self.zipf) as u64);
        if self.rng.random_bool(self.read_ratio) {
            let reply = self.client.get(format!("{endpoint}/cache/get")).query(&[("key", &key)]).send().await.ok()?;
            if !reply.status().is_success() {
                return None;
            }
            let got: Value = reply.json().await.ok()?;
            Some(Timed::Get { hit: got["hit"].as_bool()? })
        } else {
            let value = cache_value(&format!("client-{}-op-{cycle}-", self.id), self.value_bytes);
            self.post(endpoint, "/cache/put", &json!({"key": key, "value": value})).await?;
            Some(Timed::Put)
        }
    }

    /// POSTs `body`; the JSON answer of a 2xx reply, `None` otherwise.
    async fn post(&self, endpoint: &str, path: &str, body: &Value) -> Option<Value> {
        post(&self.client, endpoint, path, body).await
    }
}

/// POSTs `body` to `endpoint` + `path`; the JSON answer of a 2xx reply,
/// `None` otherwise.
async fn post(client: &reqwest::Client, endpoint: &str, path: &str, body: &Value) -> Option<Value> {
    let reply = client.post(format!("{endpoint}{path}")).json(body).send().await.ok()?;
    if !reply.status().is_success() {
        return None;
    }
    reply.json().await.ok()
}
