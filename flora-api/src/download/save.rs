//! `save_outputs`: every output of a run into one directory, media downloaded and text
//! written, each on a path of its own.

use std::path::{Path, PathBuf};

use super::{Dest, DownloadOptions, file_builder};
use crate::client::Client;
use crate::content::{Family, safe_file_stem};
use crate::error::Error;
use crate::technique::TechniqueRun;
use crate::wire::{MediaType, RunOutput};

/// The file names one `save_outputs` has given (lowercased): no two outputs share a path.
pub(super) type Claimed = std::sync::Mutex<std::collections::HashSet<String>>;

/// `<stem>.<ext>` (or `<stem>` without `ext`), else `<stem>-2.<ext>`, `-3`, …: the first
/// that no other output of the call has claimed.
pub(super) fn claim(claimed: &Claimed, stem: &str, ext: Option<&str>) -> String {
    let name = |n: usize| {
        let stem = if n == 1 {
            stem.to_owned()
        } else {
            format!("{stem}-{n}")
        };
        match ext {
            Some(e) => format!("{stem}.{e}"),
            None => stem,
        }
    };
    let mut taken = claimed.lock().unwrap_or_else(|p| p.into_inner());
    let mut n = 1;
    while !taken.insert(name(n).to_ascii_lowercase()) {
        n += 1;
    }
    name(n)
}

/// Writes `text` to `path` atomically (temporary file + rename).
async fn write_text(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |action, source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let tmp = file_builder()
        .prefix(".flora-output-")
        .tempfile_in(dir)
        .map_err(|e| io("create", e))?;
    tokio::fs::write(tmp.path(), text)
        .await
        .map_err(|e| io("write", e))?;
    tmp.persist(path).map_err(|e| io("write", e.error))?;
    Ok(())
}

impl<O> TechniqueRun<O> {
    /// Saves every output of the run (typed and extra) into `dir`: media as
    /// `<output_id>.<ext>` (downloaded), text as `<output_id>.txt`. Returns the paths in
    /// output order.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, face: flora_api::ImageUrl) -> Result<(), flora_api::Error> {
    /// let done = flora_api::techniques::CctvCam { input_image: face }.run(&client).await?;
    /// let saved = done.save_outputs(&client, "out/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_outputs(
        &self,
        client: &Client,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, Error> {
        save_all(client, self.all_outputs(), dir.as_ref()).await
    }
}

/// A media output whose value is a URL to download (else it is saved as text).
pub(crate) fn is_media_url(o: &RunOutput) -> bool {
    o.kind != MediaType::Text
        && url::Url::parse(&o.url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

async fn save_all(
    client: &Client,
    outputs: &[RunOutput],
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    let claimed = Claimed::default();
    // Text outputs' names are known now: claimed first, so they do not depend on which
    // download finishes first. Media names are claimed when their type is known.
    let text_paths: Vec<Option<PathBuf>> = outputs
        .iter()
        .map(|o| {
            (!is_media_url(o))
                .then(|| dir.join(claim(&claimed, &safe_file_stem(&o.output_id), Some("txt"))))
        })
        .collect();
    let claimed = &claimed;
    let mut jobs = Vec::new();
    for (o, text_path) in outputs.iter().zip(text_paths) {
        jobs.push(async move {
            match text_path {
                Some(path) => {
                    write_text(&path, &o.url).await?;
                    Ok(path)
                }
                None => {
                    let dest = Dest::Output {
                        dir: dir.to_path_buf(),
                        stem: safe_file_stem(&o.output_id),
                        kind: Family::of_output(&o.kind),
                        claimed,
                    };
                    client
                        .download_to(&o.url, dest, &DownloadOptions::default())
                        .await
                }
            }
        });
    }
    futures_util::future::try_join_all(jobs).await
}
