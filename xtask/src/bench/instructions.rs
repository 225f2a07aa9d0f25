//! Bench 2 counted in instructions, not seconds: the same touch-rebuilds of the techniques
//! tree (`flora-api` with N generated techniques) and the models tree (`bench-models` with N
//! generated models), each rustc run under valgrind's cachegrind, at N = 0 and N = n. On a
//! shared 2-core VM a touch-rebuild's wall time varies by ±15 % between runs; its instruction
//! count by 0.01 %, so a change of a few percent in what the generator emits shows.
//!
//! `cargo xtask bench-instructions [N]` (needs `valgrind`; about 6 minutes at N = 1000).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::models_tree::ModelsTree;
use crate::scratch;

/// The crates measured: (package, crate name as rustc sees it, what one item is).
const TREES: [(&str, &str, &str); 2] = [
    ("flora-api", "flora_api", "technique"),
    ("bench-models", "bench_models", "model"),
];

/// The rustc wrapper: the one crate named by `FLORA_BENCH_MEASURE` runs under cachegrind,
/// which writes its totals to `FLORA_BENCH_LOG`; every other rustc runs as it is.
const WRAPPER: &str = r#"#!/bin/sh
case " $* " in
  *" --crate-name $FLORA_BENCH_MEASURE "*)
    if [ -n "$FLORA_BENCH_MEASURE" ]; then
      exec valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        --log-file="$FLORA_BENCH_LOG" "$@"
    fi ;;
esac
exec "$@"
"#;

/// Instructions of one touch-rebuild per item (slope N = 0 → n) of a technique and a model.
pub fn instructions(n: usize) -> Result<String, String> {
    if n == 0 {
        return Err("give N > 0: the slope is measured from 0 to N items".into());
    }
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err("valgrind is not installed (apt-get install valgrind)".into()),
    }
    let (ws, target) = scratch::workspace("instructions")?;
    let wrapper = ws.join("rustc-wrapper.sh");
    std::fs::write(&wrapper, WRAPPER).map_err(|e| e.to_string())?;
    make_executable(&wrapper)?;
    let log = ws.join("cachegrind.log");
    let mut counts = Vec::new();
    for size in [0, n] {
        super::write_generated(&ws, size)?;
        ModelsTree::new(&ws, &target)?.write(size)?;
        let mut at = Vec::new();
        for (package, krate, _) in TREES {
            at.push(count(&ws, &target, &wrapper, &log, package, krate)?);
        }
        counts.push(at);
    }
    let mut report = format!(
        "## Compile cost in instructions (`cargo xtask bench-instructions {n}`)\n\n\
         One touch-rebuild (incremental) of each tree under cachegrind; slope N = 0 → {n}.\n\n\
         | item | N = 0 | N = {n} | per item |\n|---|---:|---:|---:|\n"
    );
    let mut per = Vec::new();
    for (i, (_, _, item)) in TREES.iter().enumerate() {
        let (a, b) = (counts[0][i], counts[1][i]);
        let slope = (b.saturating_sub(a)) as f64 / n as f64;
        per.push(slope);
        let _ = writeln!(
            report,
            "| {item} | {:.3} G | {:.3} G | {:.2} M |",
            a as f64 / 1e9,
            b as f64 / 1e9,
            slope / 1e6
        );
    }
    let ratio = per[1] / per[0];
    let _ = writeln!(
        report,
        "\nA model costs {ratio:.3}× a technique (budget: at most 1×): {}.",
        if ratio <= 1.0 { "met" } else { "NOT met" }
    );
    Ok(report)
}

/// Builds `package` (not measured), touches its `lib.rs`, rebuilds it with its rustc under
/// cachegrind; the instructions counted.
fn count(
    ws: &Path,
    target: &Path,
    wrapper: &Path,
    log: &Path,
    package: &str,
    krate: &str,
) -> Result<u64, String> {
    let wrapper = wrapper.display().to_string();
    let log_path = log.display().to_string();
    let build = ["build", "--quiet", "-p", package, "--lib"];
    let plain = [
        ("RUSTC_WRAPPER", wrapper.as_str()),
        ("FLORA_BENCH_MEASURE", ""),
    ];
    scratch::cargo(ws, target, &build, &plain)?;
    super::touch(&ws.join(package).join("src/lib.rs"))?;
    let _ = std::fs::remove_file(log);
    let measured = [
        ("RUSTC_WRAPPER", wrapper.as_str()),
        ("FLORA_BENCH_MEASURE", krate),
        ("FLORA_BENCH_LOG", log_path.as_str()),
    ];
    scratch::cargo(ws, target, &build, &measured)?;
    let text = std::fs::read_to_string(log)
        .map_err(|e| format!("no cachegrind log for {package} ({e}): was it rebuilt?"))?;
    refs(&text).ok_or_else(|| format!("no `I refs` line in cachegrind's log:\n{text}"))
}

/// The `I refs` total of a cachegrind log (`==12== I   refs:      10,188,349,800`).
fn refs(log: &str) -> Option<u64> {
    log.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [_, "I", "refs:", number] => number.replace(',', "").parse().ok(),
            _ => None,
        }
    })
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), String> {
    Err("bench-instructions runs on unix only (valgrind)".into())
}

#[cfg(test)]
mod tests {
    use super::refs;

    #[test]
    fn reads_the_instruction_total_of_a_cachegrind_log() {
        let log = "==7== Cachegrind, a high-precision tracing profiler\n==7== \n\
                   ==7== D   refs:      4,000\n==7== I   refs:      10,188,349,800\n";
        assert_eq!(refs(log), Some(10_188_349_800));
        assert_eq!(refs("==7== nothing counted\n"), None);
    }
}
