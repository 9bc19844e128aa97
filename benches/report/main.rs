//! `bench-report`: the reporting half of `scripts/bench.sh`. It owns turning
//! a results directory (`summary.json`, the raw JSON of each run,
//! `machine.json`) into `table.md` and the SVG plots, and reading
//! `neo doctor --json` for the script, so no JSON is parsed in shell.
//!
//! ```text
//! bench-report report DIR        # DIR/table.md, DIR/*.svg; prints table.md
//! bench-report usable DOCTOR     # one line per transport: name, yes|no, reasons
//! ```

mod model;
mod plot;
mod table;

use std::path::Path;

use anyhow::{bail, Context};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["report", dir] => report(Path::new(dir)),
        ["usable", doctor] => usable(Path::new(doctor)),
        _ => bail!("usage: bench-report report DIR | bench-report usable DOCTOR_JSON"),
    }
}

fn report(dir: &Path) -> anyhow::Result<()> {
    let run = model::Run::load(dir)?;
    let plots = plot::draw_all(&run, dir)?;
    let md = table::render(&run, &plots);
    std::fs::write(dir.join("table.md"), &md).context("writing table.md")?;
    print!("{md}");
    Ok(())
}

/// Prints `name<TAB>yes|no<TAB>reasons` for every transport `neo doctor`
/// reports.
fn usable(doctor: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(doctor).with_context(|| format!("reading {}", doctor.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).context("parsing neo doctor --json")?;
    let Some(ts) = v["transports"].as_array() else {
        bail!("no `transports` in {}", doctor.display());
    };
    for t in ts {
        let reasons: Vec<&str> = t["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}",
            t["name"].as_str().unwrap_or("?"),
            if t["usable"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            reasons.join("; ")
        );
    }
    Ok(())
}
