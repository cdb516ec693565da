//! The output every benchmark ends with: a human table, then one machine-readable line per
//! metric, `BENCH <metric> capi=<v> raw=<v> ratio=<capi/raw>` or
//! `BENCH <metric> value=<v> unit=<unit>`.

/// One metric, with or without a raw twin.
enum Row {
    Pair {
        metric: String,
        unit: String,
        capi: f64,
        raw: f64,
        note: String,
    },
    Value {
        metric: String,
        unit: String,
        value: f64,
        note: String,
    },
}

/// The collected metrics of one benchmark.
#[derive(Default)]
pub struct Report {
    title: String,
    rows: Vec<Row>,
}

/// Formats `value` with a precision that suits its size.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_nan() {
        "nan".to_string()
    } else if magnitude >= 1000.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.01 {
        format!("{value:.3}")
    } else {
        format!("{value:.3e}")
    }
}

fn ratio(capi: f64, raw: f64) -> f64 {
    match raw {
        0.0 => f64::NAN,
        _ => capi / raw,
    }
}

impl Report {
    /// An empty report headed `title`.
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_string(),
            rows: Vec::new(),
        }
    }

    /// A metric measured through the C API and through raw moq-net.
    pub fn pair(&mut self, metric: &str, unit: &str, capi: f64, raw: f64, note: &str) {
        self.rows.push(Row::Pair {
            metric: metric.to_string(),
            unit: unit.to_string(),
            capi,
            raw,
            note: note.to_string(),
        });
    }

    /// A metric without a raw twin.
    pub fn value(&mut self, metric: &str, unit: &str, value: f64, note: &str) {
        self.rows.push(Row::Value {
            metric: metric.to_string(),
            unit: unit.to_string(),
            value,
            note: note.to_string(),
        });
    }

    /// Prints the table, then the `BENCH` lines.
    pub fn print(&self) {
        println!("\n== {} ==", self.title);
        println!(
            "{:<34} {:>14} {:>14} {:>8}  {:<8} note",
            "metric", "C API", "raw", "ratio", "unit"
        );
        for row in &self.rows {
            match row {
                Row::Pair {
                    metric,
                    unit,
                    capi,
                    raw,
                    note,
                } => println!(
                    "{metric:<34} {:>14} {:>14} {:>8.3}  {unit:<8} {note}",
                    number(*capi),
                    number(*raw),
                    ratio(*capi, *raw)
                ),
                Row::Value {
                    metric,
                    unit,
                    value,
                    note,
                } => {
                    println!(
                        "{metric:<34} {:>14} {:>14} {:>8}  {unit:<8} {note}",
                        number(*value),
                        "-",
                        "-"
                    )
                }
            }
        }
        println!();
        for line in self.bench_lines() {
            println!("{line}");
        }
    }

    /// The machine-readable lines.
    pub fn bench_lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|row| match row {
                Row::Pair { metric, capi, raw, .. } => format!(
                    "BENCH {metric} capi={} raw={} ratio={:.4}",
                    number(*capi),
                    number(*raw),
                    ratio(*capi, *raw)
                ),
                Row::Value {
                    metric, unit, value, ..
                } => {
                    format!("BENCH {metric} value={} unit={unit}", number(*value))
                }
            })
            .collect()
    }
}
