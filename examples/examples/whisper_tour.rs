//! A tour of the `whisper` crate: create a file with carbon's common retention, write a day of
//! points, read them back at two precisions, and print what `whisper-info` would.
//!
//! Run it with `cargo run --release -p examples --example whisper_tour [DIR]`; the file goes to
//! `DIR/tour.wsp` (default `./data`).

use std::error::Error;
use std::path::PathBuf;

use whisper::{AggregationMethod, CreateOptions, parse_retention_def};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "data".into()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("tour.wsp");
    if path.exists() {
        std::fs::remove_file(&path)?;
    }

    // carbon's usual schema: a minute for a day, five minutes for a week, 15 minutes for 3 years.
    let archives = ["60s:1d", "5m:7d", "15m:3y"]
        .into_iter()
        .map(parse_retention_def)
        .collect::<Result<Vec<_>, _>>()?;
    let mut db = CreateOptions::new()
        .aggregation_method(AggregationMethod::Average)
        .create(&path, &archives)?;

    let now = whisper::now();
    let end = now - now % 60;
    let points: Vec<(i64, f64)> =
        (0..1440).map(|i| (end - (1439 - i) * 60, (i % 100) as f64)).collect();
    let started = std::time::Instant::now();
    db.update_many(&points, now)?;
    let took = started.elapsed();

    let header = db.info()?.clone();
    println!("{} ({} bytes)", path.display(), header.file_size());
    println!(
        "  aggregation {}, xFilesFactor {}, max retention {} s",
        header.aggregation_method(),
        header.x_files_factor(),
        header.max_retention()
    );
    for (i, a) in header.archives().iter().enumerate() {
        println!(
            "  archive {i}: {} points of {} s ({} s of history)",
            a.points(),
            a.seconds_per_point(),
            a.retention()
        );
    }
    println!("wrote {} points in {:.2?}", points.len(), took);

    for (label, from) in [("last hour", now - 3600), ("last 2 days", now - 2 * 86400)] {
        let series = db.fetch(from, None, now)?.ok_or("range outside the file")?;
        let known: Vec<f64> = series.values.iter().flatten().copied().collect();
        let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
        println!(
            "{label}: {} values every {} s, {} known, mean {mean:.2}",
            series.values.len(),
            series.step,
            known.len()
        );
    }
    Ok(())
}
