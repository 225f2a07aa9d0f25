//! `floret show SLUG`: a technique's inputs (as `run`'s flags) and outputs.

use std::path::Path;

use serde_json::json;

use super::super::inputs;
use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;

pub(super) async fn show(
    session: &Session,
    out: &Out,
    slug: &str,
    dir: Option<&Path>,
) -> Result<(), Failure> {
    let client = match dir {
        Some(_) => None,
        None => Some(session.client(None)?),
    };
    let schema = session.schema(client.as_ref(), slug, dir).await?;
    let flags = inputs::flags(&schema).map_err(Failure::usage)?;
    let doc = json!({
        "slug": schema.slug_or_derived(),
        "technique_id": schema.technique_id,
        "name": schema.name,
        "description": schema.description,
        "run_cost": schema.run_cost,
        "inputs": flags.iter().map(|f| json!({
            "id": f.id, "type": f.slot.kind.as_str(), "flag": format!("--{}", f.flag),
            "optional": f.slot.optional, "multiple": f.multiple,
            "name": f.slot.name, "description": f.slot.description,
        })).collect::<Vec<_>>(),
        "outputs": schema.outputs.iter().flatten().map(|s| json!({
            "id": s.id, "type": s.kind.as_str(), "name": s.name,
        })).collect::<Vec<_>>(),
    });
    out.document(&doc);
    out.event("technique", doc.clone());
    let slug_shown = inputs::plain(schema.slug_or_derived());
    out.line(&format!(
        "{} ({}), {}",
        slug_shown,
        inputs::plain(&schema.name),
        schema
            .run_cost
            .map_or("cost unknown".to_owned(), |c| format!("{c} USD per run"))
    ));
    if let Some(d) = &schema.description {
        out.line(&format!("  {}", inputs::plain(d)));
    }
    out.line(&format!("\nInputs (floret run {slug_shown} ...):"));
    for f in &flags {
        out.line(&format!(
            "  --{:<24} {:<12} {}{}{}",
            f.flag,
            inputs::plain(f.slot.kind.as_str()),
            if f.slot.optional {
                "optional"
            } else {
                "required"
            },
            if f.multiple { ", repeatable" } else { "" },
            f.slot
                .description
                .as_deref()
                .map(|d| format!("  {}", inputs::plain(d)))
                .unwrap_or_default()
        ));
    }
    out.line("\nOutputs:");
    for s in schema.outputs.iter().flatten() {
        out.line(&format!(
            "  {:<26} {}",
            inputs::plain(&s.id),
            inputs::plain(s.kind.as_str())
        ));
    }
    Ok(())
}
