//! Tokens → formatted source with the `@generated` header. Deterministic bytes.

use proc_macro2::TokenStream;

use crate::diag::Diagnostic;

/// Formats `tokens` with prettyplease behind `header` (a `//` comment line).
pub fn render(file: &str, header: &str, tokens: TokenStream) -> Result<String, Diagnostic> {
    let parsed = syn::parse2::<syn::File>(tokens).map_err(|e| {
        Diagnostic::new(
            file,
            "",
            format!("internal error: flora-codegen produced invalid Rust ({e})"),
            "this is a flora-codegen bug; please report it with this schema file",
        )
    })?;
    Ok(format!("{header}\n\n{}", prettyplease::unparse(&parsed)))
}
