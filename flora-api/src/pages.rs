//! Cursor pagination, written once for every list endpoint.

use std::collections::{HashSet, VecDeque};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{Call, Client};
use crate::error::{Error, snippet};
use crate::wire::Meta;

/// One page of a list endpoint.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Empty pages in a row (each with a new cursor) after which a listing is given up: servers
/// filter after paging, so a few empty pages are normal, but a listing that only ever
/// answers "nothing yet, try this cursor" would otherwise be followed forever.
pub(crate) const MAX_EMPTY_PAGES: u32 = 100;

/// Pages in a row whose items were all listed before (each with a new cursor) after which a
/// listing is given up: a server that repeats one page under fresh cursors would otherwise
/// be followed for ever.
pub(crate) const MAX_STALE_PAGES: u32 = 3;

/// A list request: path, query and the JSON key holding the items.
#[derive(Debug, Clone)]
pub(crate) struct ListRequest {
    pub segments: Vec<&'static str>,
    pub query: Vec<(&'static str, String)>,
    pub items_key: &'static str,
}

impl Client {
    /// Fetches one page.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        req: &ListRequest,
        cursor: Option<&str>,
    ) -> Result<Page<T>, Error> {
        Ok(self.page_seen(req, cursor).await?.0)
    }

    /// One page, with a fingerprint of each item as sent (to tell a page that brings nothing
    /// new).
    async fn page_seen<T: DeserializeOwned>(
        &self,
        req: &ListRequest,
        cursor: Option<&str>,
    ) -> Result<(Page<T>, Vec<u64>), Error> {
        let mut url = self.url(&req.segments)?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                q.append_pair(k, v);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
        }
        let endpoint = format!("GET {}", url.path());
        let mut body: Value = self.send_json(Call::get(url)).await?;
        let decode_err = |what: String, source: serde_json::Error, body: &Value| Error::Decode {
            endpoint: endpoint.clone(),
            snippet: snippet(&format!("{what}: {body}")),
            source,
        };
        let meta = match body.get_mut("meta").map(Value::take) {
            None | Some(Value::Null) => Meta::default(),
            Some(m) => {
                serde_json::from_value(m.clone()).map_err(|e| decode_err("meta".into(), e, &m))?
            }
        };
        // The items key must hold an array. A missing or null list is not "no items": treating
        // it so would let a malformed answer look like an empty catalog.
        let mut prints = Vec::new();
        let items = match body.get_mut(req.items_key).map(Value::take) {
            Some(Value::Array(list)) => {
                let mut out = Vec::with_capacity(list.len());
                for item in &list {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    item.to_string().hash(&mut h);
                    prints.push(h.finish());
                }
                for (i, item) in list.into_iter().enumerate() {
                    let decoded = T::deserialize(&item)
                        .map_err(|e| decode_err(format!("{}[{i}]", req.items_key), e, &item))?;
                    out.push(decoded);
                }
                out
            }
            other => {
                let other = other.unwrap_or(Value::Null);
                let e = <serde_json::Error as serde::de::Error>::custom(format!(
                    "the answer has no `{}` array (found {})",
                    req.items_key,
                    json_kind(&other)
                ));
                let shown = if other.is_null() { &body } else { &other };
                return Err(decode_err(req.items_key.into(), e, shown));
            }
        };
        Ok((
            Page {
                items,
                next_cursor: meta.next_cursor.filter(|c| !c.is_empty()),
            },
            prints,
        ))
    }

    /// Every item of every page, following `meta.next_cursor` until it is missing or empty.
    pub(crate) fn paginate<T: DeserializeOwned + Send + 'static>(
        &self,
        req: ListRequest,
        first_cursor: Option<String>,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        struct State<T> {
            client: Client,
            req: ListRequest,
            cursor: Option<String>,
            buffer: VecDeque<T>,
            /// Every cursor requested so far: a server that hands one out again (A → B → A)
            /// would otherwise page forever.
            seen: HashSet<String>,
            started: bool,
            /// Empty pages in a row.
            empty: u32,
            /// Every item listed so far (fingerprints), and pages in a row with none new.
            listed: HashSet<u64>,
            stale: u32,
        }
        let state = State {
            client: self.clone(),
            req,
            seen: first_cursor.iter().cloned().collect(),
            cursor: first_cursor,
            buffer: VecDeque::new(),
            started: false,
            empty: 0,
            listed: HashSet::new(),
            stale: 0,
        };
        futures_util::stream::try_unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.buffer.pop_front() {
                    return Ok(Some((item, s)));
                }
                if s.started && s.cursor.is_none() {
                    return Ok(None);
                }
                s.started = true;
                let (page, prints): (Page<T>, Vec<u64>) =
                    s.client.page_seen(&s.req, s.cursor.as_deref()).await?;
                let fresh = prints.iter().filter(|p| s.listed.insert(**p)).count();
                s.stale = if !prints.is_empty() && fresh == 0 {
                    s.stale + 1
                } else {
                    0
                };
                let endless = |why: String| Error::Decode {
                    endpoint: format!("GET /{}", s.req.segments.join("/")),
                    snippet: String::new(),
                    source: <serde_json::Error as serde::de::Error>::custom(why),
                };
                // An empty page with a cursor is followed: servers filter after paging, so an
                // empty page does not mean the end; but not forever.
                s.empty = if page.items.is_empty() {
                    s.empty + 1
                } else {
                    0
                };
                if let Some(next) = &page.next_cursor {
                    if !s.seen.insert(next.clone()) {
                        return Err(endless(format!(
                            "the server returned cursor {next:?} a second time in one \
                             listing; stopping to avoid a loop"
                        )));
                    }
                    if s.stale >= MAX_STALE_PAGES {
                        return Err(endless(format!(
                            "the server returned {MAX_STALE_PAGES} pages in a row holding only \
                             items it had listed before, each with a new cursor; stopping, as \
                             the listing does not seem to end"
                        )));
                    }
                    if s.empty >= MAX_EMPTY_PAGES {
                        return Err(endless(format!(
                            "the server returned {MAX_EMPTY_PAGES} empty pages in a row, each \
                             with a new cursor; stopping, as the listing does not seem to end"
                        )));
                    }
                }
                s.cursor = page.next_cursor;
                s.buffer.extend(page.items);
            }
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
