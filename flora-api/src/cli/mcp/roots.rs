//! Where an agent may make `floret mcp` read local files this session: the directories
//! given (`--allow-dir`), else the roots the client declares (asked once, at the first
//! call), else the current directory unless it is `/`.

use std::path::PathBuf;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use super::Server;
use super::paths::Allowed;

/// Where local files may be read: given (`--allow-dir`), or the client's roots (asked once,
/// at the first call), else the current directory.
pub(super) enum Dirs {
    Given(Allowed),
    FromClient(tokio::sync::OnceCell<Allowed>),
}

impl Server {
    /// The directories local files may be read from; the client's roots are asked once.
    pub(super) async fn allowed(&self, context: &RequestContext<RoleServer>) -> Allowed {
        let cell = match &self.inner.dirs {
            Dirs::Given(a) => return a.clone(),
            Dirs::FromClient(cell) => cell,
        };
        cell.get_or_init(|| async {
            match client_roots(context).await {
                // The roots that exist; a missing one is skipped, never widened to the
                // current directory. None left: no local file is readable.
                Some(roots) => {
                    let existing: Vec<PathBuf> = roots.into_iter().filter(|r| r.is_dir()).collect();
                    if existing.is_empty() {
                        eprintln!(
                            "floret mcp: the client's roots name no existing directory: no \
                             local file may be read (start floret mcp with --allow-dir DIR)"
                        );
                        return Allowed::none();
                    }
                    Allowed::new(&existing).unwrap_or_else(|_| Allowed::none())
                }
                // A client without roots: the current directory, unless that is the whole
                // disk (clients often start servers in `/`).
                None => match Allowed::new(&[]) {
                    Ok(a) if a.dirs().iter().all(|d| d.parent().is_some()) => a,
                    _ => {
                        eprintln!(
                            "floret mcp: the current directory is `/`: no local file may be \
                             read (start floret mcp with --allow-dir DIR)"
                        );
                        Allowed::none()
                    }
                },
            }
        })
        .await
        .clone()
    }
}

/// The `file://` roots the client declares; `None` when it has no roots capability (an
/// empty list when it does not answer within five seconds: nothing is then readable). Roots are deprecated by the protocol (SEP-2577) but the
/// clients people use still declare them, and the issue asks for them.
#[allow(deprecated)]
async fn client_roots(context: &RequestContext<RoleServer>) -> Option<Vec<PathBuf>> {
    let declares = context
        .peer
        .peer_info()
        .is_some_and(|info| info.capabilities.roots.is_some());
    if !declares {
        return None;
    }
    let asked = tokio::time::timeout(Duration::from_secs(5), context.peer.list_roots()).await;
    Some(match asked {
        Ok(Ok(listed)) => listed
            .roots
            .iter()
            .filter_map(|r| url::Url::parse(&r.uri).ok())
            .filter_map(|u| u.to_file_path().ok())
            .collect(),
        _ => Vec::new(),
    })
}
