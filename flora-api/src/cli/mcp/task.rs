//! A call answered as an MCP task (SEP-2663, the `io.modelcontextprotocol/tasks` extension)
//! for clients that take tasks: the call returns at once with the task, the client polls
//! `tasks/get`, and no client request timeout cuts a long run short. The job behind it is
//! the same as for a call that waits.

use rmcp::RoleServer;
use rmcp::model::{CallToolResponse, CallToolResult, CreateTaskResult};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskOptions};

use super::Server;
use super::job::Job;

impl Server {
    /// A job answered as an MCP task (SEP-2663) when the client takes tasks: the call returns
    /// at once and the client polls `tasks/get`, so no client timeout cuts a long run short.
    /// Else the call waits for it (`follow`).
    pub(super) async fn answer(
        &self,
        job: Job,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let tasks = context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        if !tasks {
            return self.follow(job, context).await.into();
        }
        let server = self.clone();
        let options = TaskOptions::new()
            .with_ttl_ms(TASK_TTL_MS)
            .with_poll_interval_ms(TASK_POLL_MS)
            .with_status_message("starting");
        let task = self.inner.tasks.spawn(options, move |ctx| {
            Box::pin(async move { server.follow_task(job, ctx).await })
        });
        CallToolResponse::Task(CreateTaskResult::new(task))
    }

    /// A task's side of a job: FLORA's progress as the task's status message, the job's end
    /// as its result. `tasks/cancel` stops the task, not the run (FLORA cannot cancel one):
    /// a task that ends before its job leaves the result kept for the next identical call,
    /// as a call that timed out does.
    async fn follow_task(&self, job: Job, ctx: TaskContext) -> Result<CallToolResult, TaskExit> {
        let mut progress = job.progress.clone();
        let mut updates = true;
        loop {
            tokio::select! {
                biased;
                ended = job.done.clone() => {
                    ctx.set_status_message(if ended.is_ok() { "completed" } else { "failed" });
                    return Ok(self.ended(&job, ended));
                }
                changed = progress.changed(), if updates => {
                    if changed.is_err() {
                        updates = false;
                        continue;
                    }
                    let now = progress.borrow_and_update().clone();
                    let percent = now
                        .percent
                        .map(|p| format!(" {:.0}%", p.clamp(0.0, 100.0)))
                        .unwrap_or_default();
                    ctx.set_status_message(self.inner.out.clean(&format!("{}{percent}", now.line())));
                }
                () = ctx.cancelled() => {
                    let then = progress.borrow().clone();
                    ctx.set_status_message(self.inner.out.clean(&match &then.run_id {
                        Some(id) => format!(
                            "cancelled; run {id} goes on and floret saves its outputs: call the \
                             tool again with the same arguments for its result (no second run)"
                        ),
                        None => "cancelled before the run was started; it still starts once"
                            .to_owned(),
                    }));
                    return Err(TaskExit::Cancelled);
                }
            }
        }
    }
}

/// How long a task (and its result) is kept: a run can take many minutes; a task that has
/// not ended by then fails, its run still followed, saved and kept for the same call.
const TASK_TTL_MS: u64 = 2 * 3600 * 1000;
/// How often a client is asked to poll a task: runs take seconds to minutes.
const TASK_POLL_MS: u64 = 1000;
