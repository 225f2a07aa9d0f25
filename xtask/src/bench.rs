//! `cargo xtask bench`: the numbers in BENCHMARKS.md, reproducible on this machine.
//!
//! Nothing here is a timed test: it measures and prints. `--quick` runs the smallest size of
//! each bench as a smoke test (CI uses it); budgets are checked only in the full run.

mod floret_cli;
mod instructions;
mod models_tree;
mod rate_limit;
mod user_build;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flora_api::{Client, Error, ImageUrl, OutputSet, PollPolicy, RunInput, Technique};
use serde_json::json;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{scratch, synth};

pub use instructions::instructions;

/// Which benches, and how big.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Smallest size of each bench only.
    pub quick: bool,
    /// Only these benches (`codegen`, `compile`, `client`, `scale`, `poll`, `fetch`,
    /// `buildrs`, `files`, `userbuild`, `floret`, `ratelimit`);
    /// empty: all.
    pub only: Vec<String>,
    /// Also build this git revision's generated code in the compile bench, and a user crate
    /// on its flora-api in the user-build bench, in turns with this checkout's
    /// (before/after in one run).
    pub baseline: Option<String>,
    /// Also build, in the compile bench, generated code cut down to its two structs and
    /// their derives: the cost of the user-facing contract alone.
    pub floor: bool,
}

impl BenchOptions {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the selected benches and returns a Markdown report.
pub async fn run(opts: &BenchOptions) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# flora-codegen benchmarks ({} build of xtask, {} cores)\n",
        if cfg!(debug_assertions) {
            "DEBUG"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if cfg!(debug_assertions) && !opts.quick {
        let _ = writeln!(
            out,
            "> Warning: run `cargo xtask-release bench` for the documented (release) figures.\n"
        );
    }
    if opts.wants("codegen") {
        out += &codegen(opts)?;
    }
    if opts.wants("compile") {
        out += &compile(opts)?;
    }
    if opts.wants("client") || opts.wants("scale") || opts.wants("poll") {
        let server = BenchServer::spawn()?;
        if opts.wants("client") {
            out += &client_overhead(opts, &server.base).await?;
        }
        if opts.wants("scale") {
            out += &scale_in_child(opts, &server.base)?;
        }
        if opts.wants("poll") {
            out += &poll_economy(&server.base).await?;
        }
    }
    if opts.wants("fetch") {
        out += &fetch_catalog(opts).await?;
    }
    if opts.wants("buildrs") {
        out += &build_script_mode(opts)?;
    }
    if opts.wants("files") {
        out += &crate::bench_files::run(opts.quick).await?;
    }
    if opts.wants("userbuild") {
        out += &user_build::run(opts.quick, opts.baseline.as_deref())?;
    }
    if opts.wants("floret") {
        out += &floret_cli::run(opts.quick).await?;
    }
    if opts.wants("ratelimit") {
        out += &rate_limit::run(opts.quick).await?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 8. build.rs mode vs committed code, in a user crate

fn build_script_mode(opts: &BenchOptions) -> Result<String, String> {
    let n = if opts.quick { 10 } else { 100 };
    let runs = if opts.quick { 1 } else { 3 };
    let (ws, target) = scratch::workspace("buildrs")?;
    let krate = ws.join("flora-codegen/tests/build-mode");
    let schemas = krate.join("flora-schemas");
    write_synth_schemas(&schemas, n)?;
    let lib = krate.join("src/lib.rs");
    let build = |ws: &Path| -> Result<Duration, String> {
        let t = Instant::now();
        scratch::cargo(
            ws,
            &target,
            &["build", "--quiet", "-p", "flora-build-mode", "--lib"],
            &[],
        )?;
        Ok(t.elapsed())
    };
    let write = |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| e.to_string());

    // build.rs mode: a schema edit reruns the build script (codegen) and rebuilds the crate.
    write(
        &lib,
        "pub mod techniques {\n    flora_api::include_techniques!();\n}\n",
    )?;
    build(&ws)?;
    let first = schemas.join(format!("{}.json", synth::catalog(1, 42)[0].0));
    let mut with_script = Vec::new();
    for _ in 0..runs {
        touch(&first)?;
        with_script.push(build(&ws)?);
    }
    // Committed code: the same techniques as files in src/, no build script.
    let files = flora_codegen::generate(&synth::schema_files(n, 42), &flora_codegen::Config::new())
        .map_err(|d| d.to_string())?;
    let dir = krate.join("src/techniques");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, text) in &files.files {
        write(&dir.join(name), text)?;
    }
    write(&lib, "#[rustfmt::skip]\npub mod techniques;\n")?;
    std::fs::remove_file(krate.join("build.rs")).map_err(|e| e.to_string())?;
    build(&ws)?;
    let mut committed = Vec::new();
    for _ in 0..runs {
        touch(&lib)?;
        committed.push(build(&ws)?);
    }
    let (a, b) = (median(with_script), median(committed));
    Ok(format!(
        "## 8. build.rs mode vs committed code ({n} techniques, debug, median of {runs})\n\n\
         | mode | rebuild after a change |\n|---|---:|\n\
         | build.rs (`Build` reruns on a schema edit, then the crate compiles) | {:.2} s |\n\
         | committed code (`flora-codegen generate`; the crate compiles) | {:.2} s |\n\n\
         Added by the build.rs mode: {:.2} s ({:.2}×).\n\n",
        a.as_secs_f64(),
        b.as_secs_f64(),
        a.as_secs_f64() - b.as_secs_f64(),
        a.as_secs_f64() / b.as_secs_f64()
    ))
}

// ---------------------------------------------------------------------------------------
// 6. Regen fetch: list + retrieve every technique from a server with 20 ms latency

async fn fetch_catalog(opts: &BenchOptions) -> Result<String, String> {
    let n = if opts.quick { 100 } else { 1_000 };
    let latency = Duration::from_millis(20);
    let catalog = synth::catalog(n, 42);
    let server = MockServer::start().await;
    let by_id: HashMap<String, serde_json::Value> = catalog
        .iter()
        .map(|(_, v)| {
            (
                v["technique_id"].as_str().unwrap_or_default().to_owned(),
                v.clone(),
            )
        })
        .collect();
    let summaries: Vec<serde_json::Value> = catalog
        .iter()
        .map(
            |(slug, v)| json!({"technique_id": v["technique_id"], "slug": slug, "name": v["name"]}),
        )
        .collect();
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(move |req: &Request| {
            let path = req.url.path();
            if let Some(id) = path.strip_prefix("/techniques/") {
                return match by_id.get(id) {
                    Some(v) => ResponseTemplate::new(200)
                        .set_body_json(v)
                        .set_delay(latency),
                    None => ResponseTemplate::new(404),
                };
            }
            let start: usize = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "cursor")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let end = (start + 100).min(summaries.len());
            let next = (end < summaries.len()).then(|| end.to_string());
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"techniques": &summaries[start..end], "meta": {"next_cursor": next}}),
                )
                .set_delay(latency)
        })
        .mount(&server)
        .await;
    let mut out = format!(
        "## 6. Regen fetch: {n} techniques, {} ms per request (list pages of 100, then one \
         retrieve each)\n\n| concurrency | wall time | requests/s |\n|---:|---:|---:|\n",
        latency.as_millis()
    );
    let levels: &[usize] = if opts.quick { &[8] } else { &[1, 8] };
    for &concurrency in levels {
        let t = Instant::now();
        let fetched = flora_codegen::cli::fetch(&flora_codegen::cli::FetchOptions {
            api_key: "sk_bench".into(),
            base_url: Some(format!("{}/", server.uri())),
            concurrency,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        let took = t.elapsed();
        if fetched.len() != n {
            return Err(format!("fetch bench: {} of {n} fetched", fetched.len()));
        }
        let requests = n + n.div_ceil(100);
        let _ = writeln!(
            out,
            "| {concurrency} | {:.2} s | {:.0} |",
            took.as_secs_f64(),
            requests as f64 / took.as_secs_f64()
        );
    }
    out.push('\n');
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 1. Codegen throughput

fn codegen(opts: &BenchOptions) -> Result<String, String> {
    let sizes: &[usize] = if opts.quick {
        &[100]
    } else {
        &[100, 1_000, 10_000]
    };
    let mut out = String::from(
        "## 1. Codegen throughput (parse + validate + emit + prettyplease, in-process)\n\n\
         | techniques | median total | per technique | runs |\n|---:|---:|---:|---:|\n",
    );
    let mut per = Vec::new();
    for &n in sizes {
        let files = synth::schema_files(n, 42);
        let runs = if n >= 10_000 { 3 } else { 5 };
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let generated = flora_codegen::generate(&files, &flora_codegen::Config::flora_api())
                .map_err(|d| d.to_string())?;
            times.push(t.elapsed());
            std::hint::black_box(generated);
        }
        let m = median(times);
        let per_tech = ms(m) * 1e3 / n as f64;
        per.push(per_tech);
        let _ = writeln!(out, "| {n} | {:.0} ms | {per_tech:.0} µs | {runs} |", ms(m));
    }
    if let (Some(first), Some(last)) = (per.first(), per.last()) {
        let _ = writeln!(
            out,
            "\nBudget: 10,000 in < 5 s, linear. Per-technique time at the largest size is \
             {:.2}× that at the smallest.\n",
            last / first
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 2. Compile cost of generated code

/// A scratch workspace with `n` synthetic techniques in `flora-api` and `n` synthetic models
/// in the crate `bench-models` (bench 2's input), left for profiling by hand; returns its
/// path. Builds share bench 2's target directory.
pub fn tree(n: usize) -> Result<std::path::PathBuf, String> {
    let (ws, target) = scratch::workspace("tree")?;
    write_generated(&ws, n)?;
    models_tree::ModelsTree::new(&ws, &target)?.write(n)?;
    Ok(ws)
}

fn write_generated(ws: &Path, n: usize) -> Result<usize, String> {
    let generated = flora_codegen::generate(
        &synth::schema_files(n, 42),
        &flora_codegen::Config::flora_api(),
    )
    .map_err(|d| d.to_string())?;
    scratch::write_techniques(ws, &generated.files)?;
    Ok(generated_lines(&generated.files))
}

/// Generated lines of every technique (or model) file (the index `mod.rs` left out).
fn generated_lines(files: &std::collections::BTreeMap<String, String>) -> usize {
    files
        .iter()
        .filter(|(name, _)| *name != "mod.rs")
        .map(|(_, text)| text.lines().count())
        .sum()
}

/// The synthetic catalog of `n` techniques as schema files (`<slug>.json`) in `dir`, which
/// is emptied first.
fn write_synth_schemas(dir: &Path, n: usize) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (slug, v) in synth::catalog(n, 42) {
        std::fs::write(
            dir.join(format!("{slug}.json")),
            flora_codegen::cli::schema_text(&v).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn cargo_build_env(
    ws: &Path,
    target: &Path,
    features: &[&str],
    env: &[(&str, &str)],
) -> Result<Duration, String> {
    let t = Instant::now();
    let mut args = vec!["build", "--quiet", "-p", "flora-api", "--lib"];
    if !features.is_empty() {
        args.push("--features");
        args.extend(features);
    }
    scratch::cargo(ws, target, &args, env)?;
    Ok(t.elapsed())
}

fn touch(path: &Path) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.set_modified(std::time::SystemTime::now())
        .map_err(|e| e.to_string())
}

/// Cargo features and environment of one build.
type BuildMode<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// Where a compile-bench tree's generated code comes from.
enum CodeSource {
    /// This checkout's generator.
    ThisCheckout,
    /// This checkout's generator, each technique file cut to its two structs and their
    /// derives: what the user-facing contract alone costs, the floor any design pays.
    Floor,
    /// A baseline commit's own `flora-codegen` binary.
    Baseline(std::path::PathBuf),
}

/// One tree the compile bench builds.
struct CompileTree {
    label: String,
    ws: std::path::PathBuf,
    target: std::path::PathBuf,
    source: CodeSource,
}

impl CompileTree {
    /// Writes `n` synthetic techniques with this tree's generator; returns generated lines.
    fn write(&self, n: usize) -> Result<usize, String> {
        let exe = match &self.source {
            CodeSource::ThisCheckout => return write_generated(&self.ws, n),
            CodeSource::Floor => {
                let mut generated = flora_codegen::generate(
                    &synth::schema_files(n, 42),
                    &flora_codegen::Config::flora_api(),
                )
                .map_err(|d| d.to_string())?;
                for (name, text) in generated.files.iter_mut() {
                    if name != "mod.rs"
                        && let Some(at) = text.find("impl ::flora_api::Technique for")
                    {
                        text.truncate(at);
                    }
                }
                scratch::write_techniques(&self.ws, &generated.files)?;
                return Ok(generated_lines(&generated.files));
            }
            CodeSource::Baseline(exe) => exe,
        };
        let schemas = self.ws.join("bench-schemas");
        write_synth_schemas(&schemas, n)?;
        let out = self.ws.join("flora-api/src/techniques");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let status = Command::new(exe)
            .args(["generate", "--schemas"])
            .arg(&schemas)
            .arg("--out")
            .arg(&out)
            .args(["--module-path", "flora_api::techniques"])
            .args(["--test-util-feature", "test-util"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if !status.success() {
            return Err(format!("{} generate failed", exe.display()));
        }
        let mut files = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&out).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
            files.insert(entry.file_name().to_string_lossy().into_owned(), text);
        }
        Ok(generated_lines(&files))
    }

    fn build(&self, features: &[&str], env: &[(&str, &str)]) -> Result<Duration, String> {
        cargo_build_env(&self.ws, &self.target, features, env)
    }
}

/// A git worktree of `rev` with its own generator built, as a [`CompileTree`]. It gets its
/// own target directories: its crates have the same names and relative paths as ours, so
/// sharing one would make each build overwrite the other's artifacts.
fn baseline_tree(rev: &str) -> Result<CompileTree, String> {
    let base = crate::workspace_root().join("target/scratch/baseline");
    let gen_target = base.join("gen-target");
    let (ws, commit) = scratch::with_worktree(rev, &base.join("src"), |src| {
        scratch::cargo(
            src,
            &gen_target,
            &[
                "build",
                "--quiet",
                "-p",
                "flora-codegen",
                "--features",
                "cli",
                "--bin",
                "flora-codegen",
            ],
            &[],
        )?;
        Ok(scratch::workspace_from(src, "bench-baseline")?.0)
    })?;
    Ok(CompileTree {
        label: format!("baseline {}", &commit[..commit.len().min(10)]),
        ws,
        target: base.join("target"),
        source: CodeSource::Baseline(gen_target.join("debug/flora-codegen")),
    })
}

fn compile(opts: &BenchOptions) -> Result<String, String> {
    let sizes: &[usize] = if opts.quick {
        &[0, 10]
    } else {
        &[0, 100, 1_000]
    };
    let runs = if opts.quick { 1 } else { 3 };
    let (ws, target) = scratch::workspace("bench")?;
    // Generated models, beside this checkout's techniques (issue 30: per model ≤ per technique).
    let models = models_tree::ModelsTree::new(&ws, &target)?;
    let mut trees = Vec::new();
    if let Some(rev) = &opts.baseline {
        trees.push(baseline_tree(rev)?);
    }
    let this = trees.len();
    trees.push(CompileTree {
        label: "this checkout".to_owned(),
        ws,
        target,
        source: CodeSource::ThisCheckout,
    });
    if opts.floor {
        // Its own target directory, for the same reason as the baseline's.
        let (ws, _) = scratch::workspace("bench-floor")?;
        trees.push(CompileTree {
            label: "floor: structs + derives only".to_owned(),
            ws,
            target: crate::workspace_root().join("target/scratch/floor-target"),
            source: CodeSource::Floor,
        });
    }
    let mut out = String::from(
        "## 2. Compile cost of generated code (debug `cargo build -p flora-api --lib`, deps built)\n\n\
         Rebuild after touching `lib.rs` (incremental, as the original figure), and a clean \
         non-incremental build as a registry dependency is compiled. With `--baseline`, both \
         trees are built in turns, so machine noise hits both alike.\n\n\
         | tree | techniques | median build | with `--features test-util` | clean, non-incremental | generated lines per technique |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    // Dependencies once, outside the measurement.
    for tree in &trees {
        tree.write(0)?;
        tree.build(&[], &[])?;
        tree.build(&["test-util"], &[])?;
    }
    models.write(0)?;
    models.build(&[])?;
    // n -> [touch, clean] of the models tree; its table rows.
    let mut model_points: Vec<(usize, [Duration; 2])> = Vec::new();
    let mut model_rows = String::new();
    // (tree, n) -> [touch, touch with test-util, clean]
    let mut points: Vec<Vec<(usize, [Duration; 3])>> = vec![Vec::new(); trees.len()];
    let clean = [("CARGO_INCREMENTAL", "0")];
    for &n in sizes {
        let mut lines = Vec::new();
        for tree in &trees {
            lines.push(tree.write(n)?);
        }
        let model_lines = models.write(n)?;
        // Touch-rebuild, touch-rebuild with test-util, clean non-incremental.
        let modes: [BuildMode; 3] = [(&[], &[]), (&["test-util"], &[]), (&[], &clean)];
        let mut medians = vec![[Duration::ZERO; 3]; trees.len()];
        for (m, (features, env)) in modes.iter().enumerate() {
            for tree in &trees {
                tree.build(features, env)?; // first build of this tree, not measured
            }
            let mut times = vec![Vec::new(); trees.len()];
            for _ in 0..runs {
                for (t, tree) in trees.iter().enumerate() {
                    touch(&tree.ws.join("flora-api/src/lib.rs"))?;
                    times[t].push(tree.build(features, env)?);
                }
            }
            for (t, v) in times.into_iter().enumerate() {
                medians[t][m] = median(v);
            }
        }
        for (t, tree) in trees.iter().enumerate() {
            let per = if n == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}", lines[t] as f64 / n as f64)
            };
            let [a, b, c] = medians[t];
            let _ = writeln!(
                out,
                "| {} | {n} | {:.2} s | {:.2} s | {:.2} s | {per} |",
                tree.label,
                a.as_secs_f64(),
                b.as_secs_f64(),
                c.as_secs_f64()
            );
            points[t].push((n, medians[t]));
        }
        // The models tree after the techniques trees, not in turns (see `models_tree`).
        let m = [models.measure(runs, &[])?, models.measure(runs, &clean)?];
        let per = if n == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}", model_lines as f64 / n as f64)
        };
        let _ = writeln!(
            model_rows,
            "| {n} | {:.2} s | {:.2} s | {per} |",
            m[0].as_secs_f64(),
            m[1].as_secs_f64()
        );
        model_points.push((n, m));
    }
    out.push('\n');
    for (t, tree) in trees.iter().enumerate() {
        if let (Some((_, first)), Some((n, last))) = (points[t].first(), points[t].last()) {
            let per = |i: usize| (ms(last[i]) - ms(first[i])) / (*n).max(1) as f64;
            let _ = writeln!(
                out,
                "Slope, {}: {:.2} ms of debug build per technique (N = 0 → {n}); {:.2} ms with \
                 `test-util`; {:.2} ms clean non-incremental. Budget: ≤ 10 ms (issue 11: ≤ 1.6 ms).\n",
                tree.label,
                per(0),
                per(1),
                per(2)
            );
        }
    }
    let _ = write!(
        out,
        "### Generated models beside the techniques (issue 30)\n\n\
         Debug `cargo build -p bench-models --lib`: a crate of N synthetic models \
         (`flora_codegen::generate_models`; 6–10 params each of every type, enums of 3–8 \
         options, one dict of named numbers) on `flora-api` with `models`, in the same scratch \
         workspace and target directory as this checkout's techniques, measured the same way \
         (median of {runs}) right after them, not in turns.\n\n\
         | models | median build | clean, non-incremental | generated lines per model |\n\
         |---:|---:|---:|---:|\n{model_rows}\n"
    );
    let slope = |points: &[(usize, [Duration; 2])], i: usize| match (points.first(), points.last())
    {
        (Some((_, first)), Some((n, last))) => (ms(last[i]) - ms(first[i])) / (*n).max(1) as f64,
        _ => 0.0,
    };
    // This checkout's techniques in the same two modes: touch-rebuild and clean.
    let techniques: Vec<(usize, [Duration; 2])> = points[this]
        .iter()
        .map(|(n, [touch, _, clean])| (*n, [*touch, *clean]))
        .collect();
    let n = sizes.last().copied().unwrap_or_default();
    let (t, m) = (
        [slope(&techniques, 0), slope(&techniques, 1)],
        [slope(&model_points, 0), slope(&model_points, 1)],
    );
    // A ratio only of positive slopes: at `--quick`'s 10 items, noise can make one negative.
    let ratio = |i: usize| {
        if m[i] > 0.0 && t[i] > 0.0 {
            format!("{:.2}×", m[i] / t[i])
        } else {
            "–".to_owned()
        }
    };
    let verdict = if opts.quick {
        "not judged at `--quick`'s sizes"
    } else if m[0] <= t[0] {
        "met"
    } else {
        "**not met**"
    };
    let _ = writeln!(
        out,
        "| per item (N = 0 → {n}) | touch-rebuild | clean, non-incremental |\n|---|---:|---:|\n\
         | technique (this checkout) | {:.2} ms | {:.2} ms |\n\
         | model | {:.2} ms | {:.2} ms |\n\
         | model / technique | {} | {} |\n\n\
         Budget (issue 30): compile cost per model ≤ per technique (touch-rebuild): {}.\n",
        t[0],
        t[1],
        m[0],
        m[1],
        ratio(0),
        ratio(1),
        verdict
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The loopback mock server, in a child process so its memory is not the client's.

/// A handle to `xtask bench-server`, killed on drop.
struct BenchServer {
    child: std::process::Child,
    base: String,
}

impl BenchServer {
    fn spawn() -> Result<Self, String> {
        use std::io::BufRead;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("bench-server")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the bench server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout from bench server")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let base = line.trim().to_owned();
        if !base.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            return Err(format!("bench server said {base:?}"));
        }
        Ok(BenchServer { child, base })
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per-run state of the mock: polls seen and creation time.
type Runs = Arc<Mutex<HashMap<String, (u32, Instant)>>>;

/// Serves on loopback until killed: `POST /techniques/{slug}/runs` creates a run;
/// `GET /techniques/{slug}/runs/{id}` completes it after 3 polls (`slug` = `polls3`) or
/// 300 ms after creation (`slug` = `timed300`), else answers `running`.
pub async fn serve() -> Result<(), String> {
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    let runs: Runs = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let r = runs.clone();
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(move |_: &Request| {
            let id = format!(
                "run_{}",
                next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            if let Ok(mut m) = r.lock() {
                m.insert(id.clone(), (0, Instant::now()));
            }
            ResponseTemplate::new(201).set_body_json(json!({
                "run_id": id, "status": "pending", "progress": 0, "created_at": 0
            }))
        })
        .mount(&server)
        .await;
    let r = runs.clone();
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(move |req: &Request| {
            let segs: Vec<&str> = req.url.path().split('/').collect();
            let (slug, id) = match segs.as_slice() {
                [.., "techniques", slug, "runs", id] => (*slug, *id),
                _ => return ResponseTemplate::new(404),
            };
            let done = match r.lock() {
                Ok(mut m) => match m.get_mut(id) {
                    Some((polls, created)) => {
                        *polls += 1;
                        match slug {
                            "timed300" => created.elapsed() >= Duration::from_millis(300),
                            _ => *polls >= 3,
                        }
                    }
                    None => return ResponseTemplate::new(404),
                },
                Err(_) => return ResponseTemplate::new(500),
            };
            let body = if done {
                json!({"run_id": id, "status": "completed", "progress": 100, "created_at": 0,
                       "charged_cost": 0.05, "outputs": [{"output_id": "output_image",
                       "type": "imageUrl", "url": "https://media.example/o.png"}]})
            } else {
                json!({"run_id": id, "status": "running", "progress": 50, "created_at": 0})
            };
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(&server)
        .await;
    // A trailing slash: the mock serves at the root, not at `/api/v1`.
    println!("{}/", server.uri());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// A technique of the shape generated code has, for the client benches.
#[derive(Debug, Clone)]
struct Bench<const TIMED: bool> {
    input_image: ImageUrl,
}

#[derive(Debug)]
struct BenchOutputs {
    #[allow(dead_code)]
    output_image: ImageUrl,
}

// Named constants: a generic impl's `INFO` cannot borrow temporaries.
const BENCH_INPUTS: &[flora_api::SlotInfo] =
    &[flora_api::SlotInfo::new("input_image", "imageUrl", false)];
const BENCH_OUTPUTS: &[flora_api::SlotInfo] =
    &[flora_api::SlotInfo::new("output_image", "imageUrl", false)];

impl<const TIMED: bool> Technique for Bench<TIMED> {
    const INFO: flora_api::TechniqueInfo = flora_api::TechniqueInfo::new(
        if TIMED { "timed300" } else { "polls3" },
        "tech_bench",
        0.05,
        BENCH_INPUTS,
        BENCH_OUTPUTS,
    );
    type Outputs = BenchOutputs;
    fn inputs(&self) -> Vec<RunInput> {
        let mut v = Vec::with_capacity(1);
        RunInput::push(&mut v, "input_image", "imageUrl", &self.input_image);
        v
    }
    fn parse_outputs(outputs: &mut OutputSet) -> Result<BenchOutputs, Error> {
        Ok(BenchOutputs {
            output_image: outputs.take("output_image")?,
        })
    }
}

fn bench_input<const T: bool>() -> Result<Bench<T>, String> {
    Ok(Bench {
        input_image: ImageUrl::parse("https://example.com/in.png").map_err(|e| e.to_string())?,
    })
}

// ---------------------------------------------------------------------------------------
// 3. Client overhead per request vs bare reqwest

async fn client_overhead(opts: &BenchOptions, base: &str) -> Result<String, String> {
    let iters = if opts.quick { 50 } else { 2_000 };
    let client = Client::builder()
        .api_key("sk_bench")
        .base_url(base)
        .build()
        .map_err(|e| e.to_string())?;
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let technique = bench_input::<false>()?;
    let post_url = format!("{base}techniques/polls3/runs");
    let body = json!({"inputs": technique.inputs(), "mode": "async", "idempotency_key": "k"});

    let ours_start = || async {
        let t = Instant::now();
        let h = client.start(&technique).await.map_err(|e| e.to_string())?;
        let start = t.elapsed();
        let t = Instant::now();
        client
            .get_run("polls3", h.run_id())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((start, t.elapsed()))
    };
    // The same shape as flora-api's requests: bearer auth, accept, 60 s timeout, JSON body.
    let bare_json = |req: reqwest::RequestBuilder| async move {
        req.bearer_auth("sk_bench")
            .header("accept", "application/json")
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json::<serde_json::Value>()
            .await
            .map_err(|e| e.to_string())
    };
    let bare_start = || async {
        let t = Instant::now();
        let v = bare_json(
            bare.post(&post_url)
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&body),
        )
        .await?;
        let start = t.elapsed();
        let id = v["run_id"].as_str().unwrap_or_default().to_owned();
        let t = Instant::now();
        bare_json(bare.get(format!("{base}techniques/polls3/runs/{id}"))).await?;
        Ok::<_, String>((start, t.elapsed()))
    };
    // Warm both connection pools, then interleave blocks so drift hits both alike.
    for _ in 0..20 {
        ours_start().await?;
        bare_start().await?;
    }
    let (mut o_start, mut o_poll, mut b_start, mut b_poll) = (vec![], vec![], vec![], vec![]);
    let block = 50.min(iters);
    for _ in 0..(iters / block) {
        for _ in 0..block {
            let (s, p) = ours_start().await?;
            o_start.push(s);
            o_poll.push(p);
        }
        for _ in 0..block {
            let (s, p) = bare_start().await?;
            b_start.push(s);
            b_poll.push(p);
        }
    }
    let (os, op, bs, bp) = (
        median(o_start),
        median(o_poll),
        median(b_start),
        median(b_poll),
    );
    let mut out = String::from(
        "## 3. Client overhead per request (loopback, sequential, medians)\n\n\
         | request | flora-api | bare reqwest | ratio |\n|---|---:|---:|---:|\n",
    );
    for (name, o, b) in [("start run (POST)", os, bs), ("poll (GET)", op, bp)] {
        let _ = writeln!(
            out,
            "| {name} | {:.0} µs | {:.0} µs | {:.2}× |",
            ms(o) * 1e3,
            ms(b) * 1e3,
            ms(o) / ms(b)
        );
    }
    let _ = writeln!(
        out,
        "\n{iters} requests of each kind per client. Budget: ≤ 1.2×.\n"
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 4. Many concurrent runs

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs [`scale`] in a fresh process, so its peak RSS is not that of the other benches.
fn scale_in_child(opts: &BenchOptions, base: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench-scale", "--base-url", base]);
    if opts.quick {
        cmd.arg("--quick");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the scale bench: {e}"))?;
    if !out.status.success() {
        return Err("the scale bench failed".to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Bench 4, in its own process (`xtask bench-scale`): many concurrent `run()` calls.
///
/// `max_in_flight` overrides the client's cap, to measure what the cap buys.
pub async fn scale(
    quick: bool,
    base: &str,
    max_in_flight: Option<usize>,
) -> Result<String, String> {
    let n = if quick { 200 } else { 10_000 };
    let mut builder = Client::builder();
    if let Some(m) = max_in_flight {
        builder = builder.max_in_flight(m);
    }
    let client = builder
        .api_key("sk_bench")
        .base_url(base)
        .poll_policy(
            PollPolicy::default()
                .initial_delay(Duration::from_millis(10))
                .interval(Duration::from_millis(10))
                .max_interval(Duration::from_millis(50))
                .deadline(Duration::from_secs(120)),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let technique = bench_input::<false>()?;
    let before = peak_rss_kib().unwrap_or(0);
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let c = client.clone();
            let tech = technique.clone();
            tokio::spawn(async move { c.run(&tech).await })
        })
        .collect();
    let mut ok = 0usize;
    // `--quick` is CI's smoke test: any failed run fails it.
    let mut first_err = None;
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                first_err.get_or_insert(e.to_string());
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    let elapsed = t.elapsed();
    let peak = peak_rss_kib().unwrap_or(0);
    let cap = max_in_flight.unwrap_or(flora_api::DEFAULT_MAX_IN_FLIGHT);
    let mut out = format!(
        "## 4. {n} concurrent `run()` calls (each: create + 3 polls, 10–50 ms poll policy, \
         max_in_flight {cap})\n\n\
         | succeeded | wall time | runs/s | peak RSS of the process | RSS before the runs |\n\
         |---:|---:|---:|---:|---:|\n| {ok}/{n} | {:.2} s | {:.0} | {:.1} MiB | {:.1} MiB |\n",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
    );
    if let Some(e) = first_err {
        if quick {
            return Err(format!("{} of {n} runs failed; first: {e}", n - ok));
        }
        let _ = writeln!(out, "\nFirst failure: {e}");
    }
    let _ = writeln!(
        out,
        "\nBudget: all succeed, peak RSS < 100 MiB. Runs in a process of its own; the mock \
         server in another.\n"
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 5. Poll economy

async fn poll_economy(base: &str) -> Result<String, String> {
    // Analytic: the default schedule against a run that completes at t = 30 s.
    let mut t = Duration::ZERO;
    let mut analytic = 0;
    for d in PollPolicy::default().delays() {
        t += d;
        analytic += 1;
        if t >= Duration::from_secs(30) {
            break;
        }
    }
    // Measured: every duration of the default policy scaled by 1/100, against a server whose
    // run completes 300 ms after creation (30 s / 100).
    let d = PollPolicy::default();
    let scaled = PollPolicy::default()
        .initial_delay(Duration::from_millis(20))
        .interval(Duration::from_millis(20))
        .max_interval(Duration::from_millis(50))
        .deadline(d.deadline_duration() / 100);
    let client = Client::builder()
        .api_key("sk_bench")
        .base_url(base)
        .poll_policy(scaled)
        .build()
        .map_err(|e| e.to_string())?;
    let mut polls = 0;
    let mut handle = client
        .start(&bench_input::<true>()?)
        .await
        .map_err(|e| e.to_string())?;
    handle
        .wait_with(|_| polls += 1)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "## 5. Poll economy (default policy, run taking 30 s)\n\n\
         | method | poll requests |\n|---|---:|\n\
         | schedule of `PollPolicy::default()` (analytic) | {analytic} |\n\
         | measured, policy and run time scaled by 1/100 | {polls} |\n\n\
         Budget: ≤ 9.\n\n"
    ))
}
