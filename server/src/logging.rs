//! tracing setup: human-readable logs on stderr and, with a log directory,
//! `<node>.log` (the same text) plus `<node>_structured.log` (JSON lines).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keeps the file writers flushing; drop it only at exit.
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
}

/// Installs the global subscriber for node `node` with filter `level`.
pub fn init(node: &str, level: &str, log_dir: Option<&Path>) -> std::io::Result<LogGuards> {
    let filter = EnvFilter::try_new(level).map_err(|e| std::io::Error::other(format!("LOG_LEVEL {level:?}: {e}")))?;
    let stderr = fmt::layer().with_writer(std::io::stderr).with_target(true);
    let mut guards = Vec::new();
    let files = match log_dir {
        None => None,
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let (text, text_guard) = tracing_appender::non_blocking(append_file(&dir.join(format!("{node}.log")))?);
            let (json, json_guard) =
                tracing_appender::non_blocking(append_file(&dir.join(format!("{node}_structured.log")))?);
            guards.extend([text_guard, json_guard]);
            Some(fmt::layer().with_ansi(false).with_writer(text).and_then(fmt::layer().json().with_writer(json)))
        }
    };
    tracing_subscriber::registry().with(filter).with(stderr).with(files).init();
    Ok(LogGuards { _guards: guards })
}

fn append_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}
