//! A batch built in code: items pushed typed (checked by the compiler like single runs) or
//! untyped, then started, or resumed when the program runs again after a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::options::BatchOptions;
use super::plan::PlanItem;
use super::runner::Batch;
use crate::client::Client;
use crate::error::Error;
use crate::technique::Technique;

/// A batch being planned: see [`Batch::new`].
#[derive(Debug)]
#[must_use = "a planned batch does nothing until `.start().await`"]
pub struct BatchBuilder {
    client: Client,
    technique: String,
    journal: PathBuf,
    items: Vec<PlanItem>,
    /// For typed items: the item's position and the technique its type was generated from.
    typed: Vec<(usize, &'static str, &'static str)>,
    options: BatchOptions,
}

impl Batch {
    /// Plans a batch of `technique` (slug or id) journaled at `journal`. Push items, then
    /// [`start`](BatchBuilder::start) it:
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// use flora_api::batch::Batch;
    /// use flora_api::techniques::CctvCam;
    /// let mut batch = Batch::new(&client, "cctv-cam", "faces.journal");
    /// for (i, url) in ["https://example.com/a.png", "https://example.com/b.png"].iter().enumerate() {
    ///     batch.push::<CctvCam>(format!("face-{i}"), &CctvCam { input_image: url.parse()? });
    /// }
    /// // Run again after a crash: the same plan resumes from the journal, paying nothing twice.
    /// let summary = batch.start().await?.run().await?;
    /// println!("{} completed, {} USD", summary.completed, summary.charged);
    /// # Ok(()) }
    /// ```
    #[allow(
        clippy::new_ret_no_self,
        reason = "a batch exists once its journal is written (`start`); `new` begins one"
    )]
    pub fn new(client: &Client, technique: &str, journal: impl AsRef<Path>) -> BatchBuilder {
        BatchBuilder {
            client: client.clone(),
            technique: technique.to_owned(),
            journal: journal.as_ref().to_path_buf(),
            items: Vec::new(),
            typed: Vec::new(),
            options: BatchOptions::default(),
        }
    }
}

impl BatchBuilder {
    /// Adds a typed item: the inputs of a generated technique type, named by `key` (unique in
    /// the batch; it names the item's files and keys its run).
    pub fn push<T: Technique>(&mut self, key: impl Into<String>, inputs: &T) -> &mut Self {
        self.typed
            .push((self.items.len(), T::SLUG, T::TECHNIQUE_ID));
        self.items.push(PlanItem::typed(key, inputs));
        self
    }

    /// Adds an untyped item: input id → value (a URL, a local file to upload, or text); an
    /// id given twice gives an input that allows several values each of them.
    pub fn push_values<I, K, V>(&mut self, key: impl Into<String>, values: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, v) in values {
            map.entry(id.into()).or_default().push(v.into());
        }
        self.items.push(PlanItem::new(key, map));
        self
    }

    /// Adds items read from a plan file ([`read_plan`](super::read_plan)) or built otherwise.
    pub fn extend(&mut self, items: impl IntoIterator<Item = PlanItem>) -> &mut Self {
        self.items.extend(items);
        self
    }

    /// How the batch runs (concurrency, cost limit, where outputs go).
    pub fn options(&mut self, options: BatchOptions) -> &mut Self {
        self.options = options;
        self
    }

    /// Reads the technique's live schema, checks every item against it (nothing is sent when
    /// one is wrong) and writes the journal. When the journal exists already, it is opened
    /// instead, if it holds this same plan: running the same program again resumes it.
    pub async fn start(self) -> Result<Batch, Error> {
        let schema = self.client.technique(&self.technique).await?;
        for &(at, slug, id) in &self.typed {
            if id != schema.technique_id && slug != schema.slug_or_derived() {
                let key = self.items.get(at).map_or("", |i| i.key.as_str());
                return Err(Error::InvalidInput(format!(
                    "item {key:?} holds inputs of technique `{slug}` ({id}), but this batch \
                     runs `{}`, whose schema is {}; push it into a batch of `{slug}`, or \
                     regenerate the typed code if the technique changed",
                    self.technique, schema.technique_id
                )));
            }
        }
        if self.journal.exists() {
            let batch = Batch::open(&self.client, &self.journal, self.options).await?;
            if let Some(why) = batch.differs_from(&schema, &self.items)? {
                return Err(Error::Journal {
                    path: self.journal,
                    problem: format!(
                        "it holds another plan ({why}); pick a new journal file for a new \
                         batch, or resume this one with `Batch::open`"
                    ),
                });
            }
            return Ok(batch);
        }
        Batch::create(
            &self.client,
            &self.journal,
            &schema,
            &self.items,
            self.options,
        )
        .await
    }
}
