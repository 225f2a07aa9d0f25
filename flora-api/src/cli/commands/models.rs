//! `floret models [--type image]` and `floret show-model MODEL`: the catalog, and one
//! model's params as the flags `generate` takes (choices with labels, ranges, defaults).

use std::path::Path;

use serde_json::json;

use super::super::inputs::plain;
use super::super::output::Out;
use super::super::params;
use super::super::report::Failure;
use super::super::session::Session;

pub(super) async fn models(
    session: &Session,
    out: &Out,
    kind: Option<&str>,
) -> Result<(), Failure> {
    let client = session.client(None)?;
    let all = client.models(kind).await.map_err(Failure::from)?;
    out.document(&json!({"models": all}));
    for m in &all {
        out.event(
            "model",
            json!({"model_id": m.model_id, "type": m.kind, "name": m.name}),
        );
        out.line(&format!(
            "{:<32} {:<6} {}{}",
            plain(&m.model_id),
            plain(&m.kind),
            plain(&m.name),
            m.estimated_credits
                .map(|c| format!(", about {c} credits"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

pub(super) async fn show_model(
    session: &Session,
    out: &Out,
    model_id: &str,
    dir: Option<&Path>,
) -> Result<(), Failure> {
    let client = match dir {
        Some(_) => None,
        None => Some(session.client(None)?),
    };
    let model = session.model(client.as_ref(), model_id, dir).await?;
    let flags = params::flags(&model).map_err(Failure::usage)?;
    out.document(&serde_json::to_value(&model).unwrap_or_default());
    out.line(&format!(
        "{} ({}), {}{}",
        plain(&model.model_id),
        plain(&model.name),
        plain(&model.kind),
        model
            .estimated_credits
            .map(|c| format!(", about {c} credits a generation"))
            .unwrap_or_default()
    ));
    out.line(&format!(
        "\nParams (floret generate {} --prompt TEXT ...):",
        plain(&model.model_id)
    ));
    for f in &flags {
        let p = &model.params[f.index];
        let mut line = format!("  --{:<24} {:<9}", f.flag, plain(&p.kind));
        match (p.min, p.max) {
            (Some(a), Some(b)) => line.push_str(&format!(" {a}..{b}")),
            (Some(a), None) => line.push_str(&format!(" ≥ {a}")),
            (None, Some(b)) => line.push_str(&format!(" ≤ {b}")),
            (None, None) => {}
        }
        if p.required {
            line.push_str(" required");
        }
        if let Some(d) = &p.default {
            line.push_str(&format!(" (default {})", plain(&d.to_string())));
        }
        out.line(&line);
        for o in &p.options {
            out.line(&format!(
                "      {:<22} {}",
                plain(&o.value),
                plain(&o.label)
            ));
        }
        for (k, r) in &p.properties {
            out.line(&format!("      {}={}..{}", plain(k), r.min, r.max));
        }
    }
    let unchecked: Vec<&str> = model
        .params
        .iter()
        .filter(|p| p.rule().is_none())
        .map(|p| p.name.as_str())
        .collect();
    if !unchecked.is_empty() {
        out.note(&format!(
            "not offered (a type this floret cannot check; FLORA uses its default): {}",
            plain(&unchecked.join(", "))
        ));
    }
    Ok(())
}
