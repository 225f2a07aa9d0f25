//! `cargo xtask sandbox`: `FakeFlora` on loopback with every committed technique, so the
//! examples (and curl, and other languages) run without a key and without paying.

use std::io::Write as _;

use flora_api::testing::FakeFlora;

/// A fake answering every technique of `schemas/` with placeholder outputs.
pub fn fake_with_schemas(root: &std::path::Path) -> Result<(FakeFlora, usize), String> {
    let fake = FakeFlora::new();
    let schemas = crate::regen::read_schemas(&root.join("schemas")).map_err(|e| e.to_string())?;
    for (name, text) in &schemas {
        let schema: flora_api::TechniqueSchema =
            serde_json::from_str(text).map_err(|e| format!("schemas/{name}: {e}"))?;
        fake.completes_untyped(&schema);
    }
    Ok((fake, schemas.len()))
}

/// Serves until interrupted.
pub async fn run(port: u16) -> Result<(), String> {
    let (fake, n) = fake_with_schemas(&crate::workspace_root())?;
    let served = fake.serve_on(port).await.map_err(|e| e.to_string())?;
    println!(
        "FakeFlora sandbox: {n} technique(s) from schemas/, runs complete with placeholder outputs."
    );
    println!("In another shell:\n");
    println!("export FLORA_BASE_URL={}", served.base_url());
    println!("export FLORA_API_KEY=sk_sandbox");
    println!(
        "\nthen e.g. `cargo run -p flora-api --example quickstart`. Ctrl-C stops the sandbox."
    );
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(served);
    Ok(())
}
