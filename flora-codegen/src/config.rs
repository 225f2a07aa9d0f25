//! `Config`: every generation setting in one place. `Build` (build scripts), the
//! `flora-codegen` binary and `cargo xtask regen` each build one and call the same functions.

use crate::diag::{Diagnostic, Diagnostics};

/// The runtime path generated code names by default.
pub const DEFAULT_RUNTIME_PATH: &str = "::flora_api";

/// How code is generated: the paths it names, the feature its test impls sit behind, and
/// whether warnings fail it. Private fields, builder methods (the `prost-build` shape).
///
/// ```
/// let config = flora_codegen::Config::new()
///     .module_path("my_app::techniques")
///     .runtime_path("::my_facade::flora")
///     .test_util_feature("test-util")
///     .deny_warnings(true);
/// assert_eq!(config.runtime(), "::my_facade::flora");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    module_path: Option<String>,
    runtime_path: String,
    test_util_feature: Option<String>,
    deny_warnings: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            module_path: None,
            runtime_path: DEFAULT_RUNTIME_PATH.to_owned(),
            test_util_feature: None,
            deny_warnings: false,
        }
    }
}

impl Config {
    /// The defaults: runtime `::flora_api`, no module path (struct doc examples are shown,
    /// not compiled), no test impls, warnings allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The settings of `flora-api`'s own `techniques` module (what `cargo xtask regen`
    /// generates): compiled doc examples under `flora_api::techniques`, test impls under
    /// `test-util`.
    pub fn flora_api() -> Self {
        Config::new()
            .module_path("flora_api::techniques")
            .test_util_feature("test-util")
    }

    /// The path users name the generated module by (`my_crate::techniques`): the struct
    /// docs' examples then become compiled doctests. Without it they are shown, not
    /// compiled. A Rust path: `ident(::ident)*`.
    pub fn module_path(mut self, path: impl Into<String>) -> Self {
        self.module_path = Some(path.into());
        self
    }

    /// The path generated code names the runtime by (default `::flora_api`): set it when
    /// your crate renames the dependency (`flora = { package = "flora-api", .. }` →
    /// `::flora`) or re-exports it from a facade crate (`::my_facade::flora`). A Rust path:
    /// `(::)?ident(::ident)*`, where the first segment may be `crate`.
    pub fn runtime_path(mut self, path: impl Into<String>) -> Self {
        self.runtime_path = path.into();
        self
    }

    /// Also emits the `FakeTechnique` impls (so `FakeFlora` rules and `runs::<T>()` work),
    /// under `#[cfg(feature = "<feature>")]`. Declare that feature in your crate as
    /// `<feature> = ["flora-api/test-util"]`.
    pub fn test_util_feature(mut self, feature: impl Into<String>) -> Self {
        self.test_util_feature = Some(feature.into());
        self
    }

    /// Fail generation on warnings (a slot type this flora-codegen does not know, ...).
    pub fn deny_warnings(mut self, deny: bool) -> Self {
        self.deny_warnings = deny;
        self
    }

    /// The module path, if set.
    pub fn module(&self) -> Option<&str> {
        self.module_path.as_deref()
    }

    /// The runtime path generated code names.
    pub fn runtime(&self) -> &str {
        &self.runtime_path
    }

    /// The test-util feature, if set.
    pub fn test_util(&self) -> Option<&str> {
        self.test_util_feature.as_deref()
    }

    /// Whether warnings fail generation.
    pub fn denies_warnings(&self) -> bool {
        self.deny_warnings
    }

    /// Checks the settings that become code: each path must be a plain Rust path, so no
    /// setting can add code or docs of its own. [`generate`](crate::generate) checks this
    /// first; the `Err` holds one diagnostic per bad setting.
    pub fn validate(&self) -> Result<(), Diagnostics> {
        let mut diags = Diagnostics::default();
        if let Some(path) = &self.module_path
            && let Err(why) = check_path(path, false)
        {
            diags.push(config_error("module_path", path, &why));
        }
        if let Err(why) = check_path(&self.runtime_path, true) {
            diags.push(config_error("runtime_path", &self.runtime_path, &why));
        }
        if diags.is_empty() { Ok(()) } else { Err(diags) }
    }
}

/// The settings' problems, one per line with its fix (no schema summary line).
pub(crate) fn describe(diags: &Diagnostics) -> String {
    diags
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn config_error(setting: &str, value: &str, why: &str) -> Diagnostic {
    let shown: String = value.escape_debug().take(120).collect();
    Diagnostic::new(
        "flora-codegen configuration",
        format!("/{setting}"),
        format!(
            "`{setting}` (--{}) \"{shown}\" is not a Rust path: {why}",
            setting.replace('_', "-")
        ),
        "write a path such as `my_crate::techniques` (or `::flora_api` for the runtime)",
    )
}

/// `ident(::ident)*`; with `leading`, also `::ident(::ident)*` and `crate` first.
fn check_path(path: &str, runtime: bool) -> Result<(), String> {
    let body = match path.strip_prefix("::") {
        Some(rest) if runtime => rest,
        Some(_) => return Err("a module path does not start with `::`".to_owned()),
        None => path,
    };
    if body.is_empty() {
        return Err("it is empty".to_owned());
    }
    for (i, segment) in body.split("::").enumerate() {
        let keyword_ok = runtime && i == 0 && segment == "crate" && !path.starts_with("::");
        if keyword_ok {
            continue;
        }
        // The parsed identifier must be the whole segment: the parser skips whitespace and
        // comments, which are not part of a path.
        let exact = syn::parse_str::<syn::Ident>(segment).is_ok_and(|id| id == segment);
        if !exact || segment.starts_with("r#") {
            return Err(format!(
                "`{}` is not an identifier",
                segment.escape_debug().take(60).collect::<String>()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_accepted() {
        for ok in ["flora_api::techniques", "my_app", "é::x"] {
            assert_eq!(check_path(ok, false), Ok(()), "{ok}");
        }
        for ok in ["::flora_api", "::my_facade::flora", "crate::flora", "flora"] {
            assert_eq!(check_path(ok, true), Ok(()), "{ok}");
        }
        for bad in [
            "crate::x; fn evil(){}",
            "a::b\n```\nfn evil() {}\n```",
            "",
            "a::",
            "::a",
            "a b",
            "a::fn",
            "a<b>",
            "r#a",
            "crate",
        ] {
            assert!(check_path(bad, false).is_err(), "{bad:?}");
        }
        for bad in [
            "::",
            "::crate::x",
            "x::crate",
            "::a;b",
            "::a\n",
            "a/**/",
            " a",
        ] {
            assert!(check_path(bad, true).is_err(), "{bad:?}");
        }
        let err = Config::new()
            .module_path("crate::x; fn evil(){}")
            .runtime_path("::ok")
            .validate()
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.to_string().contains("/module_path"), "{err}");
    }
}
