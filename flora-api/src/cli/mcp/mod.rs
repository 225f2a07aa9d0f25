//! `floret mcp`: every technique a typed tool for AI agents, served over the Model Context
//! Protocol on stdio (rmcp). A call is checked as `floret run` checks it before anything is
//! sent; local files (inside the allowed directories) are uploaded once per content; the
//! run starts under one idempotency key; an identical call that arrives while the first is
//! in flight joins it instead of paying again; progress goes out as MCP progress
//! notifications (or as the status of an MCP task, for clients that take tasks); outputs are saved atomically and returned as resource links with their
//! URLs and the charged cost. Stdout carries only the protocol; nothing the server sends
//! or logs carries the API key.

mod call;
mod job;
mod look;
mod models;
mod paths;
mod roots;
mod sources;
mod task;
mod tools;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    GetTaskParams, GetTaskResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::TaskManager;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value};

use super::args::McpArgs;
use super::output::{Mode, Out};
use super::report::{Exit, Failure};
use super::session::Session;
use crate::client::Client;

pub(crate) use job::Job;
use models::ModelTool;
use paths::Allowed;
use roots::Dirs;
use tools::TechniqueTool;

/// The server: what every call shares.
#[derive(Clone)]
pub(crate) struct Server {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: Client,
    /// Redaction (the key however it was given) and sanitising of server text.
    out: Out,
    techniques: BTreeMap<String, TechniqueTool>,
    models: BTreeMap<String, ModelTool>,
    download: PathBuf,
    dirs: Dirs,
    max_cost: Option<f64>,
    call_timeout: Duration,
    /// This session's id: the prefix of every idempotency key it sends.
    session_id: String,
    /// New runs started, for their keys.
    seq: AtomicU64,
    ledger: Mutex<Ledger>,
    /// Calls in flight by their fingerprint: an identical call joins.
    in_flight: Mutex<HashMap<String, Job>>,
    /// Keys of calls whose run may exist (a lost answer): the identical call reuses its
    /// key, so FLORA replays that run instead of starting another.
    keys: Mutex<HashMap<String, String>>,
    /// Results no caller received (every caller stopped waiting): the next identical call
    /// gets it instead of a new run.
    unclaimed: Mutex<HashMap<String, job::Unclaimed>>,
    /// Outputs this session saved, by run id (for `get_run`).
    saved: Mutex<HashMap<String, Value>>,
    /// Uploads by (content digest, kind), each behind its own lock: each content is uploaded
    /// once a session, even by calls at the same time.
    uploads: Mutex<HashMap<(String, &'static str), UploadCell>>,
    /// Calls answered as MCP tasks (clients that take them): polled with `tasks/get`.
    tasks: TaskManager,
}

/// One content's upload: its URL once made, behind a lock held while it is made.
type UploadCell = Arc<tokio::sync::Mutex<Option<String>>>;

/// What this session spent and may still spend.
#[derive(Debug, Default)]
struct Ledger {
    /// Settled charges of ended runs.
    charged: f64,
    /// The listed cost of each run in flight (not yet charged).
    reserved: f64,
    /// Runs whose charge was not reported (counted at their listed cost).
    unknown: usize,
}

impl Inner {
    fn lock_saved(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `floret mcp`: reads the schemas, then serves until stdin closes or Ctrl-C.
pub(crate) async fn serve(session: Session, args: McpArgs) -> ExitCode {
    // Stdout is the protocol: messages for people go to stderr.
    let out = session.out(Mode::Quiet);
    match start(&session, &out, args).await {
        Ok(server) => {
            let running = match server.clone().serve(rmcp::transport::stdio()).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("floret mcp: {}", out.clean(&e.to_string()));
                    return ExitCode::from(Exit::Other.code());
                }
            };
            let cancel = running.cancellation_token();
            let interrupted = tokio::select! {
                // EOF on stdin (the client went away) ends the service.
                _ = running.waiting() => false,
                () = session.interrupt.cancelled() => {
                    cancel.cancel();
                    true
                }
            };
            server.left_running();
            if interrupted {
                ExitCode::from(Exit::Interrupted.code())
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(f) => {
            eprintln!("floret mcp: {}", out.clean(&f.message));
            ExitCode::from(f.exit.code())
        }
    }
}

async fn start(session: &Session, out: &Out, args: McpArgs) -> Result<Server, Failure> {
    if session.global.api_key_stdin {
        return Err(Failure::usage(
            "--api-key-stdin cannot be used with floret mcp: its standard input is the \
             protocol. Give the key in FLORA_API_KEY (the `env` of the client's server config)",
        ));
    }
    if let Some(limit) = args.max_cost
        && !(limit.is_finite() && limit >= 0.0)
    {
        return Err(Failure::usage(format!(
            "--max-cost {limit}: give a number of USD, 0 or more"
        )));
    }
    let dirs = if args.allow_dir.is_empty() {
        Dirs::FromClient(tokio::sync::OnceCell::new())
    } else {
        Dirs::Given(Allowed::new(&args.allow_dir).map_err(Failure::usage)?)
    };
    // Long waits are the server's own business: a call stops waiting at --call-timeout,
    // its run is still followed to its end.
    let client = session.client(Some(Duration::from_secs(24 * 3600)))?;
    let (schemas, catalog) = sources::schemas(&client, args.schemas.as_deref(), &args.only).await?;
    let models: BTreeMap<String, ModelTool> = catalog
        .into_iter()
        .filter(|m| {
            let plain = tools::plain_name(&m.model_id);
            if !plain {
                eprintln!(
                    "floret mcp: model `{}` is not offered: its id is not plain",
                    out.clean(&m.model_id)
                );
            }
            plain
        })
        .map(ModelTool::new)
        .map(|m| (m.name.clone(), m))
        .collect();
    let mut techniques = BTreeMap::new();
    for schema in schemas {
        let slug = out.clean(schema.slug_or_derived());
        if !tools::plain_name(schema.slug_or_derived()) {
            eprintln!(
                "floret mcp: technique `{slug}` is not offered: its slug is not plain (ASCII \
                 letters, digits, `-`, `_`, `.`)"
            );
            continue;
        }
        match TechniqueTool::new(schema) {
            Ok(t) => {
                if let Some(other) = techniques.insert(t.name.clone(), t) {
                    eprintln!(
                        "floret mcp: techniques `{}` and `{slug}` share a tool name; only `{slug}` is offered",
                        out.clean(other.schema.slug_or_derived())
                    );
                }
            }
            Err(why) => eprintln!("floret mcp: `{slug}` is not offered: {}", out.clean(&why)),
        }
    }
    let download = args.download.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("floret-mcp-{now}"))
    });
    // Absolute: agents open what the answers link (`file://` URIs need a full path). Made
    // now: a folder that cannot be made is found before a call pays, not after.
    let download = std::path::absolute(&download)
        .map_err(|e| Failure::usage(format!("--download {}: {e}", download.display())))?;
    std::fs::create_dir_all(&download).map_err(|e| {
        Failure::usage(format!(
            "cannot make the folder for outputs, {}: {e}; give one with --download DIR (MCP \
             clients often start servers in `/`)",
            download.display()
        ))
    })?;
    let readable = match &dirs {
        Dirs::Given(a) => a
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Dirs::FromClient(_) => "the client's roots (else the current directory)".to_owned(),
    };
    eprintln!(
        "floret mcp: {} tool(s) on stdio; files read from {readable}; outputs saved to {}",
        techniques.len() + models.len() + tools::fixed_tools().len(),
        download.display()
    );
    Ok(Server {
        inner: Arc::new(Inner {
            client,
            out: out.clone(),
            techniques,
            models,
            download,
            dirs,
            max_cost: args.max_cost,
            call_timeout: Duration::from_secs(args.call_timeout.max(1)),
            session_id: uuid::Uuid::new_v4().simple().to_string(),
            seq: AtomicU64::new(0),
            ledger: Mutex::new(Ledger::default()),
            in_flight: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            unclaimed: Mutex::new(HashMap::new()),
            saved: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            tasks: TaskManager::new(),
        }),
    })
}

impl Server {
    fn tools(&self) -> Vec<Tool> {
        let mut out: Vec<Tool> = self
            .inner
            .techniques
            .values()
            .map(|t| self.tool(&t.name, &t.description(), t.input_schema()))
            .collect();
        out.extend(
            self.inner
                .models
                .values()
                .map(|m| self.tool(&m.name, &m.description(), m.input_schema())),
        );
        for (name, description, schema) in tools::fixed_tools() {
            let schema = match schema {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            out.push(self.tool(name, description, schema));
        }
        out
    }

    /// A tool error the agent reads: FLORA's message (cleaned) and what kind of failure.
    fn error(&self, value: Value) -> CallToolResult {
        let text = self.clean_json(&value);
        CallToolResult::error(vec![ContentBlock::text(text)])
    }

    /// JSON as text: every string without escapes or controls and without the key (server
    /// text included), then the whole redacted again.
    fn clean_json(&self, value: &Value) -> String {
        let mut v = value.clone();
        self.scrub(&mut v);
        self.inner.out.redacted_json(&v)
    }

    /// Every string of `value` as it may reach a person: no escapes, controls or key.
    fn scrub(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.inner.out.clean(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.scrub(v)),
            _ => {}
        }
    }

    /// A protocol error as the client reads it: rmcp echoes a task id as given, and a
    /// careless client could send the key there.
    fn cleaned(&self, mut e: ErrorData) -> ErrorData {
        e.message = self.inner.out.clean(&e.message).into();
        e
    }

    fn tool(&self, name: &str, description: &str, schema: Map<String, Value>) -> Tool {
        let mut schema = Value::Object(schema);
        self.scrub(&mut schema);
        let schema = match schema {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Tool::new(
            name.to_owned(),
            self.inner.out.clean(description),
            Arc::new(schema),
        )
    }

    /// Says on stderr which runs were still going when the session ended: they go on (and
    /// bill) on FLORA; their outputs were not saved.
    fn left_running(&self) {
        let flying = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (t, run_id) in flying.values().filter_map(Job::run) {
            let (t, run_id) = (self.inner.out.clean(&t), self.inner.out.clean(&run_id));
            eprintln!(
                "floret mcp: run {run_id} was still running when the session ended; it goes on \
                 on FLORA. Save its outputs with: floret wait {run_id} --technique {t} --download DIR"
            );
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let limit = self.inner.max_cost.map_or_else(
            || "without a limit".to_owned(),
            |l| format!("at most {l} USD"),
        );
        // Tasks: a client that takes them gets a run's call back at once and polls it, so
        // its own request timeout never cuts a long run short.
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(rmcp::model::Implementation::new(
                "floret",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "FLORA techniques as tools (run_<slug>). Each call is checked before anything \
                 is paid, waits for its run (or answers with a task to poll, for a client that \
                 takes tasks) and saves the outputs under {}. Give local files as paths; this \
                 session spends {limit} (cost_so_far tells).",
                self.inner.download.display()
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let name = request.name.as_ref();
        Ok(if let Some(t) = self.inner.techniques.get(name) {
            self.run(t, &args, &context).await
        } else if let Some(m) = self.inner.models.get(name) {
            self.generate(m, &args, &context).await
        } else {
            self.look(name, &args).await.into()
        })
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let task = self
            .inner
            .tasks
            .get_task(&request.task_id)
            .map_err(|e| self.cleaned(e))?;
        Ok(GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner
            .tasks
            .update_task(&request.task_id, request.input_responses)
            .map_err(|e| self.cleaned(e))
    }

    /// Stops the task, not the run: FLORA cannot cancel a run. Its outputs are still saved,
    /// and the same call made again gets its result.
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner
            .tasks
            .cancel_task(&request.task_id)
            .map_err(|e| self.cleaned(e))
    }
}
