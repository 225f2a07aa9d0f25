//! What every command stands on: the API key (read once, from `FLORA_API_KEY` or stdin, and
//! known to the output's redaction however it was given), the client, schemas, the one
//! redacting output, Ctrl-C and the command's deadline.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::args::Global;
use super::output::{KeySource, Mode, Out};
use super::report::{Exit, Failure};
use crate::ENV_API_KEY;
use crate::client::Client;
use crate::policy::PollPolicy;
use crate::wire::TechniqueSchema;

/// How long `run` and `wait` wait by default.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// One invocation's shared state.
pub(crate) struct Session {
    pub global: Global,
    /// The key as sent (trimmed), or why there is none.
    key: Result<String, Failure>,
    /// The key as given (untrimmed), for redaction.
    given: Option<String>,
    pub source: KeySource,
    /// Cancelled by the first Ctrl-C (a second one exits at once).
    pub interrupt: CancellationToken,
}

impl Session {
    /// Reads the key once: `--api-key-stdin`'s first line, else `FLORA_API_KEY`.
    pub(crate) fn new(global: Global, interrupt: CancellationToken) -> Session {
        let source = if global.api_key_stdin {
            KeySource::Stdin
        } else {
            KeySource::Env
        };
        let given = match source {
            KeySource::Stdin => {
                let mut line = String::new();
                match std::io::stdin().read_line(&mut line) {
                    Ok(_) => Some(line),
                    Err(e) => {
                        return Session {
                            global,
                            key: Err(Failure::usage(format!(
                                "--api-key-stdin: cannot read standard input: {e}"
                            ))),
                            given: None,
                            source,
                            interrupt,
                        };
                    }
                }
            }
            KeySource::Env => std::env::var(ENV_API_KEY).ok(),
        };
        let key = match given.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) => Ok(k.to_owned()),
            None => Err(Failure::usage(match source {
                KeySource::Stdin => {
                    "no API key on standard input (--api-key-stdin reads its first line)".to_owned()
                }
                KeySource::Env => format!(
                    "no API key: set {ENV_API_KEY} (or pipe it in with --api-key-stdin); to try \
                     floret without a key, run `floret sandbox` and export what it prints"
                ),
            })),
        };
        Session {
            global,
            key,
            given,
            source,
            interrupt,
        }
    }

    /// The output for this mode; it knows the key however it was given.
    pub(crate) fn out(&self, mode: Mode) -> Out {
        Out::new(mode, self.given.as_deref(), self.source)
    }

    /// A client; `wait` bounds a wait.
    pub(crate) fn client(&self, wait: Option<Duration>) -> Result<Client, Failure> {
        let key = self.key.clone()?;
        let mut b = Client::builder()
            .api_key(key)
            .poll_policy(PollPolicy::default().deadline(wait.unwrap_or(DEFAULT_WAIT)));
        // A flag, else the variable the official SDKs read.
        let setting = |flag: &Option<String>, var: &str| {
            flag.clone()
                .or_else(|| std::env::var(var).ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(url) = setting(&self.global.base_url, crate::ENV_BASE_URL) {
            b = b.base_url(url);
        }
        if let Some(ws) = setting(&self.global.workspace_id, crate::ENV_WORKSPACE_ID) {
            b = b.workspace_id(ws);
        }
        if let Some(p) = setting(&self.global.project_id, crate::ENV_PROJECT_ID) {
            b = b.project_id(p);
        }
        b.build().map_err(Failure::from)
    }

    /// A schema from `DIR/<slug>.json`, or from the API. An unknown technique is a usage
    /// slip (exit 2), with where to look.
    pub(crate) async fn schema(
        &self,
        client: Option<&Client>,
        slug: &str,
        dir: Option<&Path>,
    ) -> Result<TechniqueSchema, Failure> {
        if let Some(dir) = dir {
            let path = dir.join(format!("{slug}.json"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Failure::usage(format!("--schemas: cannot read {}: {e}", path.display()))
            })?;
            return serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!(
                    "--schemas: {} is not a technique schema: {e}",
                    path.display()
                ))
            });
        }
        let Some(client) = client else {
            return Err(Failure::usage("no schema source"));
        };
        match client.technique(slug).await {
            Ok(schema) => Ok(schema),
            Err(e) if e.status() == Some(404) => Err(Failure::new(
                Exit::Usage,
                "not_found",
                format!(
                    "no technique `{}` for this key; `floret techniques` lists those it sees",
                    crate::safe_text::plain_text(slug, 80)
                ),
            )),
            Err(e) => Err(Failure::from(e)),
        }
    }

    /// A model's catalog entry: `DIR/models/<MODEL>.json`, or the live catalog (a free
    /// read). An unknown model is a usage slip (exit 2), with where to look.
    #[cfg(feature = "models")]
    pub(crate) async fn model(
        &self,
        client: Option<&Client>,
        model_id: &str,
        dir: Option<&Path>,
    ) -> Result<crate::ModelSchema, Failure> {
        if let Some(dir) = dir {
            let path = dir.join("models").join(format!("{model_id}.json"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Failure::usage(format!("--schemas: cannot read {}: {e}", path.display()))
            })?;
            return serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!("--schemas: {} is not a model: {e}", path.display()))
            });
        }
        let Some(client) = client else {
            return Err(Failure::usage("no model source"));
        };
        client.model(model_id).await.map_err(|e| {
            let mut f = Failure::from(e);
            if f.exit == Exit::Usage {
                f.message.push_str("; `floret models` lists them");
            }
            f
        })
    }
}
